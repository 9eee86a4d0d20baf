// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Vhd;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>
/// check compares the batmap with the sector bitmaps and flags blocks off tapdisk's 4 KiB grid, on damaged copies of the
/// vhd-util dynamic sample (tests/fixtures/vhd-util/dynamic.json: block 0 full at sector 8455 with its batmap bit set,
/// block 3 partial at 12559, block 15 one sector at 16663; batmap at 0x400400, its header at 0x400200).
/// </summary>
public sealed class VhdBlockConsistencyTests : IDisposable
{
    private const long BatmapHeaderOffset = 1536 + (4 << 20);
    private const long BatmapOffset = 4196352;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdblocks-").FullName;
    private static readonly string s_expected = Samples.VhdUtilFacts("dynamic.vhd").GetProperty("guest_content_sha256").GetString()!;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Sample(string name) => VhdDamage.Copy(Samples.VhdUtilPath("dynamic.vhd"), _dir, name);

    private static VhdCheckReport Check(string path)
    {
        using var target = VhdTarget.Open(path, null);
        return VhdInspection.Check(target).Report;
    }

    [Fact]
    public void The_undamaged_sample_has_no_batmap_or_alignment_findings()
    {
        var report = Check(Samples.VhdUtilPath("dynamic.vhd"));
        Assert.Equal(VhdVerdict.Clean, report.Verdict);
        Assert.DoesNotContain(report.Findings, f => f.Code.StartsWith("VHD_BATMAP_", StringComparison.Ordinal) || f.Code == "VHD_BLOCK_UNALIGNED");
    }

    [Fact]
    public void Batmap_bit_set_over_a_partial_bitmap_is_an_error_at_the_bitmap()
    {
        // Clear the last 8 sector bits of block 0 (byte 511 of its bitmap); the batmap still says full.
        var input = Sample("bitmap-partial.vhd");
        VhdDamage.Fill(input, 8455 * 512L + 511, 1, 0);

        var report = Check(input);

        var f = Assert.Single(report.Findings, f => f.Code == "VHD_BATMAP_BITMAP_MISMATCH");
        Assert.Equal(Severity.Error, f.Severity);
        Assert.Equal(8455 * 512L, f.OffsetBytes);
        Assert.Equal("4088 sectors set", f.Stored);
        Assert.Equal(VhdVerdict.Repairable, report.Verdict);
        Assert.Contains(report.Repairs, r => r.StartsWith("batmap: bit for block 0", StringComparison.Ordinal));
    }

    [Fact]
    public void Full_bitmap_with_a_clear_batmap_bit_is_only_informational()
    {
        // Clear block 0's batmap bit and store the matching checksum, as a tapdisk that never set the bit would leave it.
        var input = Sample("batmap-lazy.vhd");
        VhdDamage.Fill(input, BatmapOffset, 1, 0);
        using (var f = FileBlockSource.Open(input))
        {
            var header = VhdBatmapHeader.Decode(f.ReadBytes(BatmapHeaderOffset, 512));
            var map = f.ReadBytes(BatmapOffset, (int)header.BatmapSizeBytes);
            var sum = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(sum, header.ComputeChecksum(map, 32UL << 20));
            f.Dispose();
            VhdDamage.Write(input, BatmapHeaderOffset + VhdBatmapHeaderLayout.Checksum, sum);
        }

        var report = Check(input);

        var info = Assert.Single(report.Findings, f => f.Code == "VHD_BATMAP_BIT_CLEAR");
        Assert.Equal(Severity.Info, info.Severity);
        Assert.Equal(BatmapOffset, info.OffsetBytes);
        Assert.Equal("batmap[0]", info.Field);
        Assert.DoesNotContain(report.Findings, f => f.Code == "VHD_BATMAP_CHECKSUM");
        Assert.Equal(VhdVerdict.Clean, report.Verdict);
    }

    [Fact]
    public void Block_off_the_4k_grid_is_flagged_at_its_bat_entry_and_repaired_to_the_same_content()
    {
        // Move block 15 (bitmap + 4096 data sectors) one sector later, off the grid, and the footer after it.
        var input = Sample("unaligned.vhd");
        byte[] block, footer;
        using (var f = FileBlockSource.Open(input))
        {
            block = f.ReadBytes(16663 * 512L, 4097 * 512);
            footer = f.ReadBytes(f.LengthBytes - 512, 512);
        }

        VhdDamage.Fill(input, 16663 * 512L, 512, 0);
        VhdDamage.Write(input, 16664 * 512L, block);
        VhdDamage.Write(input, (16664 + 4097) * 512L, footer);
        VhdDamage.SetBatEntry(input, 15, 16664);
        var before = Repo.Sha256File(input);

        var report = Check(input);

        var f15 = Assert.Single(report.Findings, f => f.Code == "VHD_BLOCK_UNALIGNED");
        Assert.Equal(Severity.Warning, f15.Severity);
        Assert.Equal(1536 + 15 * 4L, f15.OffsetBytes);
        Assert.Equal("16664", f15.Stored);
        Assert.Equal(VhdVerdict.Repairable, report.Verdict);
        Assert.Empty(report.BadRanges);
        Assert.Empty(report.Orphans);

        using var target = VhdTarget.Open(input, null);
        var raw = Path.Combine(_dir, "unaligned.raw");
        VhdInspection.Repair(target, raw, "raw", "test");
        Assert.Equal(s_expected, Repo.Sha256File(raw));
        var vhd = Path.Combine(_dir, "unaligned.out.vhd");
        VhdInspection.Repair(target, vhd, "vhd", "test");
        var again = Check(vhd);
        Assert.Equal(VhdVerdict.Clean, again.Verdict);
        Assert.DoesNotContain(again.Findings, f => f.Code == "VHD_BLOCK_UNALIGNED");
        Assert.Equal(before, Repo.Sha256File(input));
    }
}
