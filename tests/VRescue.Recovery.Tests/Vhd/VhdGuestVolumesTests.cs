// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using VRescue.Formats.Common;
using VRescue.Recovery.Vhd;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>
/// A guest disk as an installer leaves it, made with the real tools: GPT (sgdisk) with ext4 (mkfs.ext4), NTFS (mkntfs),
/// swap (mkswap) and an LVM PV (lvm2 on a loop device) whose VG holds an ext4 LV and a swap LV, written into a
/// XenServer-layout VHD. Labels, uuids and serials expected from blkid, lvm and sfdisk; damage cross-checked with
/// ntfsfix and pvck.
/// </summary>
public sealed class VhdGuestVolumesTests : IDisposable
{
    private const long MiB = 1 << 20;
    private const string SwapUuid = "3c1f2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-guestvol-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed record Guest(string Raw, long[] StartsBytes, long[] SizesBytes, string NtfsSerial, string PvUuid, long DataLvOffsetBytes, long SwapLvOffsetBytes);

    private static string Blkid(string file, string tag) =>
        Repo.Run("blkid", $"-p -o value -s {tag} \"{file}\"").Trim();

    private Guest Build()
    {
        var raw = Path.Combine(_dir, "guest.raw");
        using (var f = File.Create(raw))
        {
            f.SetLength(160 * MiB);
        }

        Repo.Run("sgdisk", $"-n1:2048:+32M -t1:8300 -n2:0:+32M -t2:0700 -n3:0:+16M -t3:8200 -n4:0:0 -t4:8e00 \"{raw}\"");
        var parts = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{raw}\"")).RootElement.GetProperty("partitiontable").GetProperty("partitions")
            .EnumerateArray().ToList();
        var starts = parts.Select(p => p.GetProperty("start").GetInt64() * 512).ToArray();
        var sizes = parts.Select(p => p.GetProperty("size").GetInt64() * 512).ToArray();

        string Part(int i, string tool, string args)
        {
            var file = Path.Combine(_dir, $"p{i + 1}.img");
            using (var f = File.Create(file))
            {
                f.SetLength(sizes[i]);
            }

            Repo.Run(tool, args.Replace("FILE", $"\"{file}\"", StringComparison.Ordinal));
            Splice(file, raw, starts[i]);
            return file;
        }

        Part(0, "mkfs.ext4", "-F -q -L guestroot FILE");
        var ntfs = Part(1, "mkntfs", $"-F -Q -q -L guestntfs -p {starts[1] / 512} FILE");
        Part(2, "mkswap", $"-L guestswap -U {SwapUuid} FILE");

        using var lvm = new LoopLvm(raw, starts[3], sizes[3]);
        lvm.Lvm($"pvcreate -q {lvm.Device}");
        lvm.Lvm($"vgcreate -q -s 1M guestvg {lvm.Device}");
        lvm.Lvm("lvcreate -q -an -Zn -y -L 24M -n data guestvg");
        lvm.Lvm("lvcreate -q -an -Zn -y -L 8M -n swap guestvg");
        var peStart = long.Parse(lvm.Report("pvs", "pv", "pe_start")[0].GetProperty("pe_start").GetString()!, CultureInfo.InvariantCulture);
        var pvUuid = lvm.Report("pvs", "pv", "pv_uuid")[0].GetProperty("pv_uuid").GetString()!;
        long LvOffset(string lv)
        {
            var range = lvm.Report($"lvs --segments guestvg/{lv}", "seg", "seg_pe_ranges")[0].GetProperty("seg_pe_ranges").GetString()!;
            return peStart + (long.Parse(range.Split(':')[1].Split('-')[0], CultureInfo.InvariantCulture) * MiB);
        }

        var data = Path.Combine(_dir, "lv-data.img");
        using (var f = File.Create(data))
        {
            f.SetLength(24 * MiB);
        }

        Repo.Run("mkfs.ext4", $"-F -q -L lvdata \"{data}\"");
        var swap = Path.Combine(_dir, "lv-swap.img");
        using (var f = File.Create(swap))
        {
            f.SetLength(8 * MiB);
        }

        Repo.Run("mkswap", $"-L lvswap \"{swap}\"");
        var (dataOffset, swapOffset) = (LvOffset("data"), LvOffset("swap"));
        Splice(data, raw, starts[3] + dataOffset);
        Splice(swap, raw, starts[3] + swapOffset);
        return new Guest(raw, starts, sizes, Blkid(ntfs, "UUID"), pvUuid, dataOffset, swapOffset);
    }

    private static void Splice(string file, string into, long offset)
    {
        using var src = File.OpenRead(file);
        using var dst = new FileStream(into, FileMode.Open, FileAccess.Write);
        dst.Position = offset;
        src.CopyTo(dst);
    }

    private static GuestReport Judge(string raw, string dir)
    {
        var vhd = VhdDamage.RawToXenVhd(raw, Path.Combine(dir, $"guest-{Guid.NewGuid():N}.vhd"));
        var before = Repo.Sha256File(vhd);
        using (var target = VhdTarget.Open(vhd, null))
        {
            var (check, _, _) = VhdInspection.Check(target);
            Assert.Equal(before, Repo.Sha256File(vhd));
            return check.Guest!;
        }
    }

    [RealFact("sgdisk", "sfdisk", "mkfs.ext4", "mkntfs", "mkswap", "blkid", "losetup", "lvm", Root = true)]
    public void Every_guest_volume_is_named_as_the_real_tools_name_it_and_judged_healthy()
    {
        var g = Build();
        var guest = Judge(g.Raw, _dir);

        Assert.Equal("gpt", guest.PartitionTable);
        var byStart = guest.Volumes.ToDictionary(v => (v.StartBytes, v.Container));
        var root = byStart[(g.StartsBytes[0], null)];
        Assert.Equal(("ext4", "guestroot", "healthy"), (root.Type, root.Label, root.Health));

        var ntfs = byStart[(g.StartsBytes[1], null)];
        Assert.Equal(("ntfs", g.NtfsSerial, "healthy"), (ntfs.Type, ntfs.Uuid, ntfs.Health));

        var swap = byStart[(g.StartsBytes[2], null)];
        Assert.Equal(("swap", "guestswap", SwapUuid, "healthy"), (swap.Type, swap.Label, swap.Uuid, swap.Health));

        var pv = byStart[(g.StartsBytes[3], null)];
        Assert.Equal(("lvm2-pv", "guestvg", "healthy"), (pv.Type, pv.Label, pv.Health));
        Assert.Equal(g.PvUuid, pv.Uuid);
        Assert.DoesNotContain(pv.Findings, f => f.Severity == Severity.Error);

        var data = byStart[(g.StartsBytes[3] + g.DataLvOffsetBytes, "lvm2 VG guestvg LV data")];
        Assert.Equal(("ext4", "lvdata", "healthy", 24 * MiB), (data.Type, data.Label, data.Health, data.SizeBytes));
        var lvSwap = byStart[(g.StartsBytes[3] + g.SwapLvOffsetBytes, "lvm2 VG guestvg LV swap")];
        Assert.Equal(("swap", "lvswap", "healthy"), (lvSwap.Type, lvSwap.Label, lvSwap.Health));
        Assert.Equal(6, guest.Volumes.Count);
    }

    [RealFact("sgdisk", "sfdisk", "mkfs.ext4", "mkntfs", "mkswap", "blkid", "losetup", "lvm", "ntfsfix", Root = true)]
    public void Damaged_ntfs_mirror_swap_header_and_guest_lvm_metadata_are_each_reported_where_they_are()
    {
        var g = Build();

        // NTFS: change one byte of $MFTMirr's first record (ntfsfix -n must see the mismatch too).
        var ntfsHead = new byte[512];
        using (var f = File.OpenRead(g.Raw))
        {
            f.Position = g.StartsBytes[1];
            f.ReadExactly(ntfsHead);
        }

        var cluster = BinaryPrimitives.ReadUInt16LittleEndian(ntfsHead.AsSpan(0x0B)) * ntfsHead[0x0D];
        var mirror = g.StartsBytes[1] + (BinaryPrimitives.ReadInt64LittleEndian(ntfsHead.AsSpan(0x38)) * cluster);
        VhdDamage.Fill(g.Raw, mirror + 0x100, 1, 0x5A);
        var ntfsPart = Path.Combine(_dir, "ntfs-check.img");
        using (var src = File.OpenRead(g.Raw))
        using (var dst = File.Create(ntfsPart))
        {
            src.Position = g.StartsBytes[1];
            var buffer = new byte[g.SizesBytes[1]];
            src.ReadExactly(buffer);
            dst.Write(buffer);
        }

        var ntfsfix = Repo.Run("ntfsfix", $"-n \"{ntfsPart}\"", check: false);
        Assert.Contains("$MFTMirr", ntfsfix, StringComparison.Ordinal);

        // Swap: a header claiming twice the partition (a shrunk partition, or the header of a larger area).
        var lastPage = (uint)((2 * g.SizesBytes[2] / 4096) - 1);
        var le = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(le, lastPage);
        VhdDamage.Write(g.Raw, g.StartsBytes[2] + 1024 + 4, le);

        // Guest LVM: one byte of the VG text changed, so the mda's text checksum no longer matches; pvck says where.
        long pvckTextOffset;
        using (var lvm = new LoopLvm(g.Raw, g.StartsBytes[3], g.SizesBytes[3]))
        {
            var text = File.ReadAllBytes(g.Raw).AsSpan((int)g.StartsBytes[3], (int)Math.Min(g.SizesBytes[3], 1 * MiB));
            var at = text.LastIndexOf("guestvg {"u8); // the newest copy in the ring: the committed one
            Assert.True(at > 0);
            VhdDamage.Fill(g.Raw, g.StartsBytes[3] + at + 2, 1, (byte)'X');
            var env = new Dictionary<string, string> { ["LVM_SYSTEM_DIR"] = lvm.Directory, ["LVM_SUPPRESS_FD_WARNINGS"] = "1" };
            var pvck = Repo.Run("bash", $"-c \"lvm pvck {lvm.Device} 2>&1\"", env, check: false);
            var check = System.Text.RegularExpressions.Regex.Match(pvck, @"CHECK: metadata text at (\d+) crc does not match");
            Assert.True(check.Success, pvck);
            pvckTextOffset = long.Parse(check.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        var guest = Judge(g.Raw, _dir);
        var byStart = guest.Volumes.Where(v => v.Container is null).ToDictionary(v => v.StartBytes);

        var ntfs = byStart[g.StartsBytes[1]];
        var mirrorFinding = Assert.Single(ntfs.Findings, f => f.Code == "NTFS_MFT_MIRROR");
        Assert.Equal(mirror, mirrorFinding.OffsetBytes);
        Assert.Equal("warnings", ntfs.Health);

        var swap = byStart[g.StartsBytes[2]];
        var beyond = Assert.Single(swap.Findings, f => f.Code == "SWAP_BEYOND_VOLUME");
        Assert.Equal(g.StartsBytes[2] + 1028, beyond.OffsetBytes);
        Assert.Equal("damaged", swap.Health);
        Assert.Contains($"mkswap -U {SwapUuid} -L 'guestswap'", swap.NextStep, StringComparison.Ordinal);

        var pv = byStart[g.StartsBytes[3]];
        Assert.NotEqual("healthy", pv.Health);
        Assert.Contains(pv.Findings, f => f.Severity >= Severity.Warning && f.OffsetBytes == g.StartsBytes[3] + pvckTextOffset);
    }
}
