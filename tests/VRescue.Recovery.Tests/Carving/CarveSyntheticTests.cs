// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Diagnostics;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Carving;
using VRescue.Storage;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>Carving on PVs written in memory with SM-layout VHDs: placement, ambiguity, hostile input.</summary>
public class CarveSyntheticTests
{
    private static readonly CarveOptions s_options = new() { PeStartBytes = CarveSyntheticPv.PeStartBytes };

    [Fact]
    public void Interleaved_vdis_with_distinct_patterns_are_placed_exactly()
    {
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(24);
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        // A: 6 blocks, every second partial; B: 5 blocks, all full. LE0/LE1 adjacent (lvcreate 8M), then alternating lvextends.
        long[] pesA = [0, 1, 4, 6, 8];
        long[] pesB = [2, 3, 5, 7, 9];
        pv.WriteVhd(write, a, 12L << 20, pesA, 6, k => k % 2 == 1, hidden: 0);
        pv.WriteVhd(write, b, 12L << 20, pesB, 5, hidden: 0);

        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        Assert.Equal(2, result.Vdis.Count);
        var va = result.Vdis.Single(v => v.Footer.Uuid == a);
        var vb = result.Vdis.Single(v => v.Footer.Uuid == b);
        Assert.True(pesA.SequenceEqual(va.Extents.Select(e => e!.Pe)), string.Join(" | ", va.Extents.Select(e => $"{e!.Pe}: {string.Join("; ", e.Evidence)}")));
        Assert.Equal(pesB, vb.Extents.Select(e => e!.Pe));
        Assert.Equal(1.0, va.Extents[0]!.Confidence);
        Assert.All(va.Extents.Concat(vb.Extents), e => Assert.Contains(e!.Evidence, x => x.Length > 0));
    }

    [Fact]
    public void Indistinguishable_extents_are_reported_with_both_candidates()
    {
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(16);
        var x = Guid.NewGuid();
        var y = Guid.NewGuid();
        // Same BAT, all blocks full: LE2 of X and of Y look alike, neither touches a neighbour run.
        long[] pesX = [0, 1, 5, 9];
        long[] pesY = [2, 3, 7, 11];
        pv.WriteVhd(write, x, 8L << 20, pesX, 3);
        pv.WriteVhd(write, y, 8L << 20, pesY, 3);

        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        var vx = result.Vdis.Single(v => v.Footer.Uuid == x);
        var vy = result.Vdis.Single(v => v.Footer.Uuid == y);
        foreach (var v in new[] { vx, vy })
        {
            var le2 = v.Extents[2]!;
            Assert.True(le2.Ambiguous, string.Join("; ", le2.Evidence));
            Assert.True(le2.Confidence <= 0.5);
            Assert.Equal(new long[] { 5, 7 }, le2.AlternativePes!.Append(le2.Pe).Order());
            Assert.Contains(v.Findings, f => f.Code == "CARVE_EXTENT_AMBIGUOUS" || f.Code == "CARVE_EXTENTS_UNPLACED");
        }

        // Heads, batmap extents (run from the head) and tails (uuid) stay certain.
        Assert.Equal([0L, 1, 9], new[] { 0, 1, 3 }.Select(le => vx.Extents[le]!.Pe));
        Assert.Equal([2L, 3, 11], new[] { 0, 1, 3 }.Select(le => vy.Extents[le]!.Pe));
    }

    [Theory]
    [InlineData(0xFFFF_FFFF_FFFF_FE00ul, 8ul << 20)]
    [InlineData(1536ul, ulong.MaxValue)]
    public void Vhd_head_with_a_u64_table_offset_or_size_near_2_to_the_64_is_read_without_crash(ulong tableOffset, ulong currentSize)
    {
        // Fuzz find (sr-sample, VHD footer and header in an LV with table_offset 0xFFFFFFFFFFFFFE00, checksums fixed): the
        // offset cast to long went negative and carve died slicing the extent (ArgumentOutOfRangeException). A current
        // size near 2^64 overflowed ceil(size / block size) in UsedTableEntries.
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(4);
        var head = new byte[1536];
        new VhdFooter { DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = currentSize, DataOffsetBytes = 512, Uuid = Guid.NewGuid() }.Encode(head);
        new VhdDynamicHeader { TableOffsetBytes = tableOffset, MaxTableEntries = 4 }.Encode(head.AsSpan(512));
        write(CarveSyntheticPv.PeStartBytes + pv.ExtentBytes, head);

        var pe1 = CarveSyntheticPv.PeStartBytes + pv.ExtentBytes;
        var rec = CarveScanner.Analyse(bytes.AsSpan((int)pe1, (int)pv.ExtentBytes), 0, 1, pe1);
        if (tableOffset >= (ulong)pv.ExtentBytes)
        {
            Assert.True(rec.Kind.HasFlag(CarvePeKind.BadHead));
        }
        else
        {
            Assert.True(rec.Kind.HasFlag(CarvePeKind.VhdHead));
            Assert.InRange(rec.HeadBat!.Length, 0, (pv.ExtentBytes - 1536) / 4);
        }

        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);
        Assert.True(result.Vdis.Count <= 1);
    }

    [Fact]
    public void Ext4_superblocks_with_absurd_geometry_are_no_evidence_and_no_crash()
    {
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(16);
        var x = Guid.NewGuid();
        var y = Guid.NewGuid();
        long[] pesX = [0, 1, 5, 9];
        long[] pesY = [2, 3, 7, 11];
        pv.WriteVhd(write, x, 8L << 20, pesX, 3);
        pv.WriteVhd(write, y, 8L << 20, pesY, 3);

        // Superblocks (magic 0xEF53 @0x38) whose group offset overflows 64 bits, in both contested extents.
        var sb = new byte[1024];
        BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x4), uint.MaxValue);          // s_blocks_count_lo
        BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x14), uint.MaxValue);         // s_first_data_block
        BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x18), 6);                     // s_log_block_size: 64 KiB
        BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x20), uint.MaxValue);         // s_blocks_per_group
        BinaryPrimitives.WriteUInt16LittleEndian(sb.AsSpan(0x38), 0xEF53);
        BinaryPrimitives.WriteUInt16LittleEndian(sb.AsSpan(0x5A), ushort.MaxValue);       // s_block_group_nr
        foreach (var pe in new long[] { 5, 7 })
        {
            write(CarveSyntheticPv.PeStartBytes + (pe * pv.ExtentBytes) + 0x100000, sb);
        }

        var pe5 = CarveSyntheticPv.PeStartBytes + (5 * pv.ExtentBytes);
        Assert.Single(CarveScanner.Analyse(bytes.AsSpan((int)pe5, (int)pv.ExtentBytes), 0, 5, pe5).Ext4);
        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        foreach (var v in result.Vdis)
        {
            var le2 = v.Extents[2]!;
            Assert.True(le2.Ambiguous);
            Assert.Equal(new long[] { 5, 7 }, le2.AlternativePes!.Append(le2.Pe).Order());
            Assert.DoesNotContain(le2.Evidence, e => e.Contains("ext4", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Raw_ext4_superblocks_with_hostile_geometry_are_bounded_and_never_recovered()
    {
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(16);
        void Superblock(long pe, uint blocks, uint perGroup, uint logBlock, ushort roCompat)
        {
            var sb = new byte[1024];
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x4), blocks);              // s_blocks_count_lo
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x14), 1);                  // s_first_data_block
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x18), logBlock);           // s_log_block_size
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x20), perGroup);           // s_blocks_per_group
            BinaryPrimitives.WriteUInt16LittleEndian(sb.AsSpan(0x38), 0xEF53);
            BinaryPrimitives.WriteUInt32LittleEndian(sb.AsSpan(0x64), roCompat);           // s_feature_ro_compat
            Guid.NewGuid().TryWriteBytes(sb.AsSpan(0x68));
            write(CarveSyntheticPv.PeStartBytes + (pe * pv.ExtentBytes) + 0x400, sb);
        }

        Superblock(0, uint.MaxValue, 8192, 0, 1);    // larger than the PV
        Superblock(1, 60000, 7, 0, 1);               // blocks per group not a multiple of 8
        Superblock(2, 60000, 1u << 20, 0, 1);        // blocks per group > 8 x block size
        Superblock(3, 50000, 8, 0, 0);               // valid by the kernel's rules: 6,000+ groups, no sparse_super

        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        Assert.Equal(3, result.Findings.Count(f => f.Code == "CARVE_RAW_SUPERBLOCK_UNUSABLE"));
        var raw = Assert.Single(result.RawVdis);
        Assert.False(raw.Recovered);                                          // its many copies are nowhere
        Assert.True(raw.Candidates.Count <= CarveRaw.MaxCheckpoints);
    }

    [Fact]
    public void Pv_full_of_conectix_strings_gives_a_finding_and_no_vdi()
    {
        var (bytes, _) = CarveSyntheticPv.Memory(32);
        var rnd = new Random(8);
        rnd.NextBytes(bytes.AsSpan((int)CarveSyntheticPv.PeStartBytes));
        for (var o = 0; o + 8 <= bytes.Length; o += 512)
        {
            "conectix"u8.CopyTo(bytes.AsSpan(o));
        }

        var watch = Stopwatch.StartNew();
        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        Assert.Empty(result.Vdis);
        Assert.Contains(result.Findings, f => f.Code == "CARVE_BAD_VHD_HEAD");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), watch.Elapsed.ToString());
    }

    /// <summary>
    /// Every even extent opens with a valid dynamic header and no footer copy (an empty BAT), every odd one ends with a
    /// footer of its own uuid that fits any of them: no footer can be told to belong to a head, so each head gets a
    /// rebuilt footer (one block) and says so. Bounded.
    /// </summary>
    [Fact]
    public void Pv_full_of_headers_without_footer_copies_is_bounded_and_reported()
    {
        const int extents = 48;
        var (bytes, _) = CarveSyntheticPv.Memory(extents);
        var header = new VRescue.Formats.Vhd.VhdDynamicHeader { TableOffsetBytes = 0x600, MaxTableEntries = 0x100000 };
        var extentBytes = (int)(4L << 20);
        for (var pe = 0; pe < extents; pe += 2)
        {
            var at = (int)CarveSyntheticPv.PeStartBytes + (pe * extentBytes);
            header.Encode(bytes.AsSpan(at + 512, 1024));
            bytes.AsSpan(at + 0x600, extentBytes - 0x600).Fill(0xFF);         // the BAT, as far as this extent holds it: empty
            var footer = new VRescue.Formats.Vhd.VhdFooter { DataOffsetBytes = 512, CurrentSizeBytes = 8L << 20, OriginalSizeBytes = 8L << 20, DiskType = VRescue.Formats.Vhd.VhdDiskType.Dynamic, Uuid = Guid.NewGuid() };
            footer.Encode(bytes.AsSpan(at + (2 * extentBytes) - 512, 512));
        }

        var watch = Stopwatch.StartNew();
        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), watch.Elapsed.ToString());
        Assert.Equal(extents / 2, result.Vdis.Count);
        Assert.All(result.Vdis, v => Assert.Contains(v.Findings, f => f.Code == "CARVE_HEAD_FOOTER_DAMAGED" && f.Message.Contains("fit equally", StringComparison.Ordinal)));
        Assert.All(result.Vdis, v => Assert.Equal(2UL << 20, v.Footer.CurrentSizeBytes));
    }

    [Fact]
    public void Absurd_bat_and_duplicated_footer_uuids_become_findings()
    {
        var pv = new CarveSyntheticPv();
        var (bytes, write) = CarveSyntheticPv.Memory(16);
        var dup = Guid.NewGuid();
        pv.WriteVhd(write, dup, 8L << 20, [0, 1, 2, 3], 2);
        pv.WriteVhd(write, dup, 8L << 20, [4, 5, 6, 7], 2);
        var absurd = Guid.NewGuid();
        pv.WriteVhd(write, absurd, 8L << 20, [8, 9, 10, 11], 3);
        // BAT of the third head: an entry far past the PV, one into the metadata, one duplicated.
        var bat = (int)(CarveSyntheticPv.PeStartBytes + (8 * pv.ExtentBytes) + 0x600);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(bat), 0xFFFFFFF0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(bat + 4), 3);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(bat + 8), 8455);
        // A head claiming 64 TiB of virtual size (max BAT) with a valid checksum.
        var huge = new VRescue.Formats.Vhd.VhdFooter { DataOffsetBytes = 512, CurrentSizeBytes = 64UL << 40, DiskType = VRescue.Formats.Vhd.VhdDiskType.Dynamic, Uuid = Guid.NewGuid() };
        var hugeHead = (int)(CarveSyntheticPv.PeStartBytes + (12 * pv.ExtentBytes));
        bytes.AsSpan(hugeHead, 4 << 20).Clear();
        huge.Encode(bytes.AsSpan(hugeHead));
        new VRescue.Formats.Vhd.VhdDynamicHeader { TableOffsetBytes = 0x600, MaxTableEntries = 0x100000 }.Encode(bytes.AsSpan(hugeHead + 512));
        bytes.AsSpan(hugeHead + 0x600, (4 << 20) - 0x600).Fill(0x01);

        var result = Carver.Carve([new MemoryBlockSource(bytes, "pv")], s_options);

        Assert.Contains(result.Findings, f => f.Code == "CARVE_DUPLICATE_FOOTER_UUID");
        Assert.Contains(result.Vdis.SelectMany(v => v.Findings), f => f.Code == "CARVE_BAT_ENTRIES_INVALID");
        Assert.Contains(result.Findings, f => f.Code is "CARVE_HEAD_TOO_LARGE");
        Assert.All(result.Vdis, v => Assert.True(v.ExtentCount <= 16));
    }

    [Fact]
    public void Scanner_reads_bitmap_grid_and_signatures_of_one_extent()
    {
        var extent = new byte[4 << 20];
        "conectix"u8.CopyTo(extent);
        extent[0x1E00] = 0xFF;                      // bitmap position 1, gap [0x1000, 0x1E00) zero
        extent.AsSpan(0x2000, 0xE00).Fill(1);       // position 2 has a non-zero gap: not a bitmap
        extent[0x2E00] = 0x80;
        extent.AsSpan((4 << 20) - 512).Fill(0xC7);

        var pe = CarveScanner.Analyse(extent, 0, 7, 0);

        Assert.True(pe.Kind.HasFlag(CarvePeKind.BadHead));
        Assert.True(pe.Kind.HasFlag(CarvePeKind.TailKilled));
        // Position 1023 is extent end - 512, where a tail footer (here 0xC7) also lives.
        Assert.Equal([(ushort)1, 1023], pe.Bitmaps);
    }
}
