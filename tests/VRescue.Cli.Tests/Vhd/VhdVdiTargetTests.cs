// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// `vrescue vhd check|repair IMAGE --vdi UUID` on the sr-export fixture, whose sr.json lays the vhd-util chain
/// base &lt;- mid &lt;- leaf into LVs: the leaf's parents are found in the same SR and the guest is judged.
/// </summary>
public sealed class VhdVdiTargetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdvdi-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonElement Leaf(SrFixture fx) =>
        fx.Sr.GetProperty("vdis").EnumerateArray().Single(v => v.TryGetProperty("sample", out var s) && s.GetString() == "chain-leaf.vhd");

    /// <summary>Disk offset of the leaf's end footer: the last sector of its LV (vhd-util on a block device), mapped through lvs' segments.</summary>
    private static long EndFooterDiskOffset(SrFixture fx, string lvName)
    {
        var segments = fx.LvmRows("lvs.json", "seg").Where(r => r.GetProperty("lv_name").GetString() == lvName).ToList();
        return DiskOffset(fx, lvName, SrFixture.LvmBytes(segments[0], "lv_size") - 512);
    }

    /// <summary>
    /// Disk offset of LV offset <paramref name="lvOffset"/> from `lvs --segments` (lvs.json): the segment holding
    /// LE = offset / extent size gives its first PE (seg_pe_ranges), and the byte is pe_start + PE × extent size + the rest.
    /// </summary>
    private static long DiskOffset(SrFixture fx, string lvName, long lvOffset)
    {
        var extent = fx.Sr.GetProperty("extentSizeBytes").GetInt64();
        var segments = fx.LvmRows("lvs.json", "seg").Where(r => r.GetProperty("lv_name").GetString() == lvName).ToList();
        var le = lvOffset / extent;
        var seg = segments.Single(s => SrFixture.LvmNumber(s, "seg_start_pe") <= le && le < SrFixture.LvmNumber(s, "seg_start_pe") + SrFixture.LvmNumber(s, "seg_size_pe"));
        var firstPe = long.Parse(seg.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-')[0]);
        var pe = firstPe + le - SrFixture.LvmNumber(seg, "seg_start_pe");
        return fx.Sr.GetProperty("peStartBytes").GetInt64() + pe * extent + lvOffset % extent;
    }

    [RealFact(Fixture = "sr-export")]
    public void Check_inside_the_sr_gives_each_finding_its_disk_offset_through_the_lv_extent_map_and_keeps_the_lv_offset()
    {
        var fx = new SrFixture("sr-export");
        // A VDI whose LV has two segments on non-adjacent PEs (lvs.json), so the two damaged sectors map differently.
        var vdi = fx.Sr.GetProperty("vdis").EnumerateArray().First(v =>
            !v.GetProperty("deleted").GetBoolean() && v.GetProperty("kind").GetString() == "vhd"
            && fx.LvmRows("lvs.json", "seg").Count(r => r.GetProperty("lv_name").GetString() == v.GetProperty("lvName").GetString()) > 1);
        var lvName = vdi.GetProperty("lvName").GetString()!;
        var footerLv = vdi.GetProperty("vhdFooterLvOffsetBytes").GetInt64();
        const long headerChecksumLv = 512 + 36; // VHD spec: dynamic header at 0x200 (footer data offset), checksum at +36
        var footerDisk = DiskOffset(fx, lvName, footerLv);
        var headerDisk = DiskOffset(fx, lvName, headerChecksumLv);
        Assert.NotEqual(footerDisk - headerDisk, footerLv - headerChecksumLv);

        var image = Path.Combine(_dir, "image.img");
        File.Copy(fx.ImagePath, image);
        using (var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            var cookie = new byte[8];
            f.Position = footerDisk;
            f.ReadExactly(cookie);
            Assert.Equal("conectix"u8.ToArray(), cookie);
            f.Position = footerDisk;
            f.Write(Enumerable.Repeat((byte)0xC7, 512).ToArray());
            f.Position = headerDisk;
            var b = f.ReadByte();
            f.Position = headerDisk;
            f.WriteByte((byte)(b ^ 0xFF));
        }

        var before = Repo.Sha256File(image);
        var r = Cli.Run("vhd", "check", image, "--vdi", vdi.GetProperty("uuid").GetString()!, "--json");

        Assert.Equal(1, r.ExitCode);
        var findings = r.Json.GetProperty("findings").EnumerateArray().ToList();
        var killed = findings.Single(f => f.GetProperty("code").GetString() == "VHD_FOOTER_KILLED");
        Assert.Equal(footerLv, killed.GetProperty("lvOffsetBytes").GetInt64());
        Assert.Equal(footerDisk, killed.GetProperty("offsetBytes").GetInt64());
        Assert.Equal(lvName, killed.GetProperty("lv").GetString());
        Assert.Equal(image, killed.GetProperty("disk").GetString());
        var checksum = findings.Single(f => f.GetProperty("code").GetString() == "VHD_HEADER_CHECKSUM");
        var checksumLv = checksum.GetProperty("lvOffsetBytes").GetInt64();
        Assert.InRange(checksumLv, 512, headerChecksumLv);
        Assert.Equal(DiskOffset(fx, lvName, checksumLv), checksum.GetProperty("offsetBytes").GetInt64());
        Assert.All(findings.Where(f => f.GetProperty("lvOffsetBytes").ValueKind == JsonValueKind.Number), f =>
            Assert.Equal(DiskOffset(fx, lvName, f.GetProperty("lvOffsetBytes").GetInt64()), f.GetProperty("offsetBytes").GetInt64()));
        Assert.Equal(before, Repo.Sha256File(image));
    }

    [RealFact(Fixture = "sr-export")]
    public void Check_of_the_chain_leaf_inside_the_sr_is_clean_with_its_parents_resolved()
    {
        var fx = new SrFixture("sr-export");
        var leaf = Leaf(fx).GetProperty("uuid").GetString()!;

        var r = Cli.Run("vhd", "check", fx.ImagePath, "--vdi", leaf, "--json");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal("clean", r.Json.GetProperty("verdict").GetString());
        Assert.Equal("differencing", r.Json.GetProperty("diskType").GetString());
        Assert.Equal(3, r.Json.GetProperty("chain").GetArrayLength());
        Assert.DoesNotContain(r.Json.GetProperty("findings").EnumerateArray(), f => f.GetProperty("code").GetString() == "VHD_CHAIN_UNRESOLVED");
        Assert.Equal(JsonValueKind.Object, r.Json.GetProperty("guest").ValueKind);
    }

    [RealFact(Fixture = "sr-export")]
    public void Repair_of_the_leaf_with_its_end_footer_killed_gives_the_guest_content()
    {
        var fx = new SrFixture("sr-export");
        var leaf = Leaf(fx);
        var uuid = leaf.GetProperty("uuid").GetString()!;
        var image = Path.Combine(_dir, "image.img");
        File.Copy(fx.ImagePath, image);
        var at = EndFooterDiskOffset(fx, leaf.GetProperty("lvName").GetString()!);
        using (var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            var cookie = new byte[8];
            f.Position = at;
            f.ReadExactly(cookie);
            Assert.Equal("conectix"u8.ToArray(), cookie);
            f.Position = at;
            f.Write(Enumerable.Repeat((byte)0xC7, 512).ToArray());
        }

        var before = Repo.Sha256File(image);
        var check = Cli.Run("vhd", "check", image, "--vdi", uuid, "--json");
        Assert.Equal(1, check.ExitCode);
        Assert.Contains(check.Json.GetProperty("findings").EnumerateArray(), f => f.GetProperty("code").GetString() == "VHD_FOOTER_KILLED");

        var output = Path.Combine(_dir, "leaf.raw");
        var r = Cli.Run("vhd", "repair", image, "--vdi", uuid, "--out", output, "--format", "raw", "--json");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(leaf.GetProperty("expectedSha256").GetString(), Repo.Sha256File(output));
        Assert.Equal(Samples.VhdUtilFacts("chain-leaf.vhd").GetProperty("guest_content_sha256").GetString(), Repo.Sha256File(output));
        Assert.Equal(before, Repo.Sha256File(image));
    }

    [Fact]
    public void Several_files_without_vdi_are_a_usage_error()
    {
        var sample = Samples.VhdUtilPath("dynamic.vhd");
        var r = Cli.Run("vhd", "check", sample, sample);
        Assert.Equal(64, r.ExitCode);
        Assert.Contains("without --vdi", r.Stderr);
    }
}
