// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Storage.Lvm;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Lvm;

/// <summary>
/// The reader against PVs made by real lvm2 on loop devices; expected facts come from lvs/pvs/vgs/pvck.
/// One class, so these run one after another (each uses its own loop device and isolated lvm.conf).
/// </summary>
public partial class LvmPhysicalVolumeReaderTests
{
    private const long MiB = 1024 * 1024;

    private static string XenVgName() => "VG_XenStorage-" + Guid.NewGuid();

    /// <summary>Several LVs created and extended alternately so their extents interleave.</summary>
    private static string MakeFragmentedXenVg(LoopLvm loop, string metadataSize = "10M")
    {
        var vg = XenVgName();
        loop.Lvm($"vgcreate --metadatasize {metadataSize} {vg} {loop.Device}");
        var lvs = new[] { "VHD-" + Guid.NewGuid(), "VHD-" + Guid.NewGuid(), "LV-" + Guid.NewGuid() };
        foreach (var lv in lvs)
        {
            loop.Lvm($"lvcreate -an -Zn -y -L 8M -n {lv} {vg}");
        }

        for (var round = 0; round < 2; round++)
        {
            foreach (var lv in lvs)
            {
                loop.Lvm($"lvextend -L +4M {vg}/{lv}");
            }
        }

        return vg;
    }

    private static LvmPhysicalVolumeReport ReadImage(string path)
    {
        using var source = FileBlockSource.Open(path);
        return LvmPhysicalVolumeReader.Read(source);
    }

    private static Dictionary<string, string> Pvck(LoopLvm loop)
    {
        var facts = new Dictionary<string, string>();
        foreach (var line in loop.Lvm($"pvck --dump headers {loop.Device}").Split('\n'))
        {
            var m = PvckLine().Match(line);
            if (m.Success)
            {
                facts[m.Groups[1].Value] = m.Groups[2].Value;
            }
        }

        return facts;
    }

    private static uint Hex32(string s) => uint.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\s*(\S+(?: at)?) (\S+)")]
    private static partial Regex PvckLine();

    [GeneratedRegex(@"metadata text at (\d+) crc (0x[0-9a-f]+)")]
    private static partial Regex PvckText();

    /// <summary>Every stripe of every segment as lvs prints it: (lv, start, size, "dev:first-last").</summary>
    private static List<(string, long, long, string, long)> OurSegments(LvmPhysicalVolumeReport r, string device)
    {
        var vg = r.Metadata!.VolumeGroup!;
        return vg.LogicalVolumes.SelectMany(lv => lv.Segments.Select(s =>
                (lv.Name, s.StartExtent, s.ExtentCount,
                    $"{device}:{s.Stripes[0].PeStart}-{s.Stripes[0].PeStart + s.ExtentCount - 1}", lv.ExtentCount * vg.ExtentSizeBytes)))
            .OrderBy(x => x.Name, StringComparer.Ordinal).ThenBy(x => x.StartExtent).ToList();
    }

    private static List<(string, long, long, string, long)> ToolSegments(LoopLvm loop) =>
        loop.Report("lvs --segments", "seg", "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges,lv_size")
            .Select(j => (j.GetProperty("lv_name").GetString()!, long.Parse(j.GetProperty("seg_start_pe").GetString()!),
                long.Parse(j.GetProperty("seg_size_pe").GetString()!), j.GetProperty("seg_pe_ranges").GetString()!,
                long.Parse(j.GetProperty("lv_size").GetString()!)))
            .OrderBy(x => x.Item1, StringComparer.Ordinal).ThenBy(x => x.Item2).ToList();

    [RealFact("lvm", "losetup", Root = true)]
    public void Reader_matches_lvs_pvs_vgs_and_pvck_on_a_fragmented_xen_vg()
    {
        using var loop = new LoopLvm(128 * MiB);
        var vgName = MakeFragmentedXenVg(loop);
        var before = Repo.Sha256File(loop.ImagePath);

        var r = ReadImage(loop.ImagePath);

        Assert.Equal(before, Repo.Sha256File(loop.ImagePath));
        Assert.DoesNotContain(r.Findings, f => f.Severity != Severity.Info);
        var segments = OurSegments(r, loop.Device);
        Assert.True(segments.Count > 3, "the scenario should fragment the LVs");
        Assert.Equal(ToolSegments(loop), segments);

        var pv = Assert.Single(loop.Report("pvs", "pv", "pv_uuid,pe_start,dev_size"));
        Assert.Equal(pv.GetProperty("pv_uuid").GetString(), r.PvUuid);
        Assert.Equal(long.Parse(pv.GetProperty("pe_start").GetString()!), r.PeStartBytes);
        Assert.Equal(ulong.Parse(pv.GetProperty("dev_size").GetString()!), r.DeviceSizeBytes);
        Assert.Equal(long.Parse(pv.GetProperty("dev_size").GetString()!), r.MetadataPv!.DevSizeSectors * 512);

        var vgRow = Assert.Single(loop.Report("vgs", "vg", "vg_name,vg_seqno,vg_extent_size,vg_uuid"));
        var vg = r.Metadata!.VolumeGroup!;
        Assert.Equal(vgName, vg.Name);
        Assert.Equal(vgRow.GetProperty("vg_name").GetString(), vg.Name);
        Assert.Equal(long.Parse(vgRow.GetProperty("vg_seqno").GetString()!), vg.Seqno);
        Assert.Equal(long.Parse(vgRow.GetProperty("vg_extent_size").GetString()!), vg.ExtentSizeBytes);
        Assert.Equal(vgRow.GetProperty("vg_uuid").GetString(), vg.Id);

        var pvck = Pvck(loop);
        var label = r.Label!;
        Assert.Equal(1, r.LabelSector);
        Assert.Equal(Hex32(pvck["label_header.crc"]), label.StoredCrc);
        Assert.Equal(label.StoredCrc, label.ComputedCrc);
        var mda = Assert.Single(r.Mdas);
        Assert.Equal(long.Parse(pvck["mda_header_1 at"]), mda.HeaderOffsetBytes);
        Assert.Equal(Hex32(pvck["mda_header_1.checksum"]), mda.Header!.ComputedChecksum);
        Assert.Equal(Hex32(pvck["mda_header_1.raw_locn[0].checksum"]), mda.ComputedTextCrc);
        Assert.Equal(ulong.Parse(pvck["mda_header_1.size"]), mda.Header.SizeBytes);
        var text = PvckText().Match(loop.Lvm($"pvck --dump headers {loop.Device}"));
        Assert.Equal(long.Parse(text.Groups[1].Value), mda.TextOffsetBytes);
        Assert.True(mda.HeaderValid && mda.TextCrcValid);
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Wrapped_ring_still_reads_the_current_text_with_the_right_crc()
    {
        using var loop = new LoopLvm(64 * MiB);
        var vg = XenVgName();
        // Smallest ring LVM allows: mda size 61,440 bytes (research 2.3).
        loop.Lvm($"pvcreate --metadatasize 32k --dataalignment 64k {loop.Device}");
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        loop.Lvm($"lvcreate -an -Zn -y -L 4M -n keep-{Guid.NewGuid()} {vg}");
        LvmMetadataAreaReport? wrapped = null;
        for (var i = 0; i < 60 && wrapped is null; i++)
        {
            // Names of varying length vary the text size, so some copy straddles the end of the ring.
            var lv = $"t{i}-" + new string('x', i * 37 % 60);
            foreach (var command in new[] { $"lvcreate -an -Zn -y -L 4M -n {lv} {vg}", $"lvremove -y {vg}/{lv}" })
            {
                loop.Lvm(command);
                var mda = ReadImage(loop.ImagePath).Mdas[0];
                Assert.True(mda.TextCrcValid);
                if (mda.TextExtent!.Value.WrapLengthBytes > 0)
                {
                    wrapped = mda;
                    break;
                }
            }
        }

        Assert.NotNull(wrapped);
        var r = ReadImage(loop.ImagePath);
        var m = r.Mdas[0];
        Assert.True(m.TextExtent!.Value.WrapLengthBytes > 0);
        Assert.Equal(61440ul, m.Header!.SizeBytes);
        Assert.True(m.TextCrcValid);
        Assert.Equal(Hex32(Pvck(loop)["mda_header_1.raw_locn[0].checksum"]), m.ComputedTextCrc);
        Assert.DoesNotContain(r.Findings, f => f.Severity != Severity.Info);
        Assert.Equal(long.Parse(Assert.Single(loop.Report("vgs", "vg", "vg_seqno")).GetProperty("vg_seqno").GetString()!),
            r.Metadata!.VolumeGroup!.Seqno);
        Assert.Equal(ToolSegments(loop), OurSegments(r, loop.Device));
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Second_metadata_area_is_read_and_matches_the_first()
    {
        using var loop = new LoopLvm(128 * MiB);
        var vg = XenVgName();
        loop.Lvm($"pvcreate --pvmetadatacopies 2 {loop.Device}");
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        loop.Lvm($"lvcreate -an -Zn -y -L 8M -n a {vg}");

        var r = ReadImage(loop.ImagePath);
        var pvck = Pvck(loop);
        Assert.Equal(2, r.Mdas.Count);
        Assert.Equal(long.Parse(pvck["mda_header_2 at"]), r.Mdas[1].HeaderOffsetBytes);
        Assert.Equal(Hex32(pvck["mda_header_2.checksum"]), r.Mdas[1].Header!.StoredChecksum);
        Assert.All(r.Mdas, m => Assert.True(m.HeaderValid && m.TextCrcValid));
        Assert.Equal(r.Mdas[0].ComputedTextCrc, r.Mdas[1].ComputedTextCrc);
        Assert.Equal(Hex32(pvck["mda_header_2.raw_locn[0].checksum"]), r.Mdas[1].ComputedTextCrc);
        Assert.DoesNotContain(r.Findings, f => f.Severity != Severity.Info);
    }

    /// <summary>The VG section written alone (trailers differ between copies: description, time).</summary>
    private static string VgOnly(LvmMetadata m)
    {
        var root = new LvmConfigSection("");
        root.Add(new LvmConfigNode(m.VolumeGroup!.Section));
        return LvmMetadataWriter.WriteOnDisk(root);
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Written_text_is_restored_by_vgcfgrestore_in_both_styles()
    {
        using var loop = new LoopLvm(128 * MiB);
        var vg = MakeFragmentedXenVg(loop);
        var expected = ToolSegments(loop);
        var r = ReadImage(loop.ImagePath);
        var seqno = r.Metadata!.VolumeGroup!.Seqno;

        // The tool's own backup file parses to the same VG as the on-disk copy we read.
        var toolBackup = Path.Combine(loop.Directory, "tool-backup.vg");
        loop.Lvm($"vgcfgbackup -f {toolBackup} {vg}");
        var fromTool = LvmMetadata.Parse(File.ReadAllBytes(toolBackup));
        Assert.DoesNotContain(fromTool.Findings, f => f.Severity != Severity.Info);
        Assert.Equal(VgOnly(r.Metadata), VgOnly(fromTool));

        var backup = Path.Combine(loop.Directory, "backup.vg");
        File.WriteAllText(backup, LvmMetadataWriter.WriteBackup(r.Metadata));
        var victim = expected[0].Item1;
        loop.Lvm($"lvremove -y {vg}/{victim}");
        Assert.DoesNotContain(ToolSegments(loop), s => s.Item1 == victim);

        Assert.Contains("Restored volume group", loop.Lvm($"vgcfgrestore -f {backup} {vg}"));
        Assert.Equal(expected, ToolSegments(loop));
        var vgs = Assert.Single(loop.Report("vgs", "vg", "vg_seqno"));
        Assert.Equal(seqno + 1, long.Parse(vgs.GetProperty("vg_seqno").GetString()!)); // vgcfgrestore writes file seqno + 1

        var onDisk = Path.Combine(loop.Directory, "ondisk.txt");
        File.WriteAllText(onDisk, LvmMetadataWriter.WriteOnDisk(r.Metadata));
        loop.Lvm($"lvremove -y {vg}/{victim}");
        Assert.Contains("Restored volume group", loop.Lvm($"vgcfgrestore -f {onDisk} {vg}"));
        Assert.Equal(expected, ToolSegments(loop));

        // And what LVM wrote after the restore reads back cleanly.
        var after = ReadImage(loop.ImagePath);
        Assert.DoesNotContain(after.Findings, f => f.Severity != Severity.Info);
        Assert.Equal(expected, OurSegments(after, loop.Device));
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Damage_on_a_real_pv_becomes_findings()
    {
        using var loop = new LoopLvm(64 * MiB);
        var vg = XenVgName();
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        loop.Lvm($"lvcreate -an -Zn -y -L 8M -n a {vg}");
        var good = File.ReadAllBytes(loop.ImagePath);
        var r = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(good));
        var mda = r.Mdas[0];

        var textFlip = (byte[])good.Clone();
        textFlip[mda.TextOffsetBytes!.Value + 10] ^= 0x20;
        var t = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(textFlip));
        var crc = Assert.Single(t.Findings, f => f.Code == "LVM_METADATA_CRC");
        Assert.Equal(mda.TextOffsetBytes, crc.OffsetBytes);

        var headerFlip = (byte[])good.Clone();
        headerFlip[mda.HeaderOffsetBytes + 200] ^= 1;
        Assert.Contains(LvmPhysicalVolumeReader.Read(new MemoryBlockSource(headerFlip)).Findings, f => f.Code == "LVM_MDA_HEADER_CRC");

        var noLabel = (byte[])good.Clone(); // what pvremove does to the label sector
        noLabel.AsSpan(512, 512).Clear();
        var n = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(noLabel));
        Assert.Contains(n.Findings, f => f.Code == "LVM_NO_LABEL");
        Assert.Contains(n.Findings, f => f.Code == "LVM_MDA_WITHOUT_LABEL");
        Assert.Equal(vg, n.Metadata!.VolumeGroup!.Name);

        var wiped = (byte[])good.Clone(); // what wipefs -a erases
        wiped.AsSpan(0x218, 8).Clear();
        var w = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(wiped));
        Assert.Contains(w.Findings, f => f.Code == "LVM_LABEL_TYPE_WIPED");
        Assert.Equal(r.PvUuid, w.PvUuid);
        Assert.Equal(vg, w.Metadata!.VolumeGroup!.Name);
    }

    [Fact]
    public void Zero_tiny_and_random_sources_give_findings_not_exceptions()
    {
        Assert.Contains(LvmPhysicalVolumeReader.Read(new MemoryBlockSource(new byte[4 * 1024 * 1024])).Findings, f => f.Code == "LVM_NO_LABEL");
        Assert.Contains(LvmPhysicalVolumeReader.Read(new MemoryBlockSource(new byte[100])).Findings, f => f.Code == "LVM_NO_LABEL");
        var rng = new Random(5);
        var bytes = new byte[64 * 1024];
        for (var i = 0; i < 200; i++)
        {
            rng.NextBytes(bytes);
            "LABELONE"u8.CopyTo(bytes.AsSpan(512));
            bytes[512 + 8] = 1;
            Assert.NotEmpty(LvmPhysicalVolumeReader.Read(new MemoryBlockSource(bytes)).Findings);
        }
    }

    [Fact]
    public void Raw_locn_bigger_than_the_area_is_not_read()
    {
        var pv = new byte[2 * 1024 * 1024];
        LvmLabel.Create(1, "ppJvqWKZeyljd1y8gZS6qie71qqMd8mp", (ulong)pv.Length, [new LvmDiskLocation(MiB, 0)],
            [new LvmDiskLocation(4096, MiB - 4096)]).Raw.CopyTo(pv.AsSpan(512));
        LvmMdaHeader.Create(4096, MiB - 4096, new LvmRawLocation(512, 1ul << 62, 0, 0)).Raw.CopyTo(pv.AsSpan(4096));
        var r = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(pv));
        Assert.Contains(r.Findings, f => f.Code == "LVM_MDA_RAW_LOCN" && f.OffsetBytes == 4096 + 40);
        Assert.Null(r.Mdas[0].Text);
        Assert.Null(r.Metadata);
    }

    [Fact]
    public void Mda_size_of_two_to_the_64_minus_1_is_out_of_range_not_a_crash()
    {
        var pv = new byte[2 * 1024 * 1024];
        LvmLabel.Create(1, "ppJvqWKZeyljd1y8gZS6qie71qqMd8mp", (ulong)pv.Length, [new LvmDiskLocation(MiB, 0)],
            [new LvmDiskLocation(4096, MiB - 4096)]).Raw.CopyTo(pv.AsSpan(512));
        LvmMdaHeader.Create(4096, ulong.MaxValue, new LvmRawLocation(512, 100, 0, 0)).Raw.CopyTo(pv.AsSpan(4096));
        var r = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(pv));
        var f = Assert.Single(r.Findings, f => f.Code == "LVM_MDA_OUT_OF_RANGE");
        Assert.Equal(4096 + 32, f.OffsetBytes);
        Assert.Contains(r.Findings, f => f.Code == "LVM_MDA_SIZE_MISMATCH");
        Assert.Null(r.Mdas[0].Text);
    }

    [Fact]
    public void Text_parse_errors_point_into_the_pv_through_the_wrap()
    {
        var pv = new byte[2 * 1024 * 1024];
        const long mdaAt = 4096, mdaSize = 8192;
        LvmLabel.Create(1, "ppJvqWKZeyljd1y8gZS6qie71qqMd8mp", (ulong)pv.Length, [new LvmDiskLocation(MiB, 0)],
            [new LvmDiskLocation(mdaAt, mdaSize)]).Raw.CopyTo(pv.AsSpan(512));
        var text = Encoding.ASCII.GetBytes("vg {\nid = \"x\"\nseqno = 1\n" + new string('#', 900) + "\nbroken ! here\n}\n\0");
        const int first = 512; // the copy starts 512 bytes before the end of the ring and wraps
        text.AsSpan(0, first).CopyTo(pv.AsSpan((int)(mdaAt + mdaSize - first)));
        text.AsSpan(first).CopyTo(pv.AsSpan((int)(mdaAt + 512)));
        LvmMdaHeader.Create(mdaAt, mdaSize, new LvmRawLocation(mdaSize - first, (ulong)text.Length, LvmCrc.Compute(text), 0)).Raw.CopyTo(pv.AsSpan((int)mdaAt));

        var r = LvmPhysicalVolumeReader.Read(new MemoryBlockSource(pv));
        Assert.True(r.Mdas[0].TextCrcValid);
        var parse = Assert.Single(r.Findings, f => f.Code == "LVM_METADATA_PARSE");
        var inText = Encoding.ASCII.GetString(text).IndexOf("! here", StringComparison.Ordinal);
        Assert.Equal(mdaAt + 512 + (inText - first), parse.OffsetBytes);
    }
}
