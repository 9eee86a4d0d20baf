// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Carving;

// Content evidence for a (PE, extent) pair: bitmap sectors, batmap, straddling blocks, guest ext4.
public static partial class CarveSolver
{
    /// <summary>
    /// The block whose bitmap is the last one in <paramref name="lower"/>'s extent continues into the next extent:
    /// its bitmap says which of those sectors the guest wrote. Share of the next extent's non-zero sectors in that
    /// range whose bit is set (null when the range holds too few non-zero sectors to tell).
    /// </summary>
    private static double? Straddle(Slot lower, CarvePe first, CarvePe second, long extent)
    {
        if (lower.Expected is not { Count: > 0 } exp || second.NonZeroSectors.Length == 0)
        {
            return null;
        }

        var pos = exp[^1] & PositionMask;
        var idx = first.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
        if (idx < 0)
        {
            return null;
        }

        var bitmap = first.BitmapSectors[idx];
        var dataStart = CarveScanner.BitmapPhaseBytes + ((long)pos * CarveScanner.GridBytes) + 512;
        int agree = 0, disagree = 0;
        for (var i = 0; i < 4096; i++)
        {
            var at = dataStart + (i * 512L) - extent;
            if (at < 0)
            {
                continue;
            }

            var s = (int)(at / 512);
            if (s >= second.NonZeroSectors.Length * 64)
            {
                break;
            }

            if ((second.NonZeroSectors[s >> 6] & (1UL << (s & 63))) == 0)
            {
                continue;
            }

            if ((bitmap[i / 8] & (0x80 >> (i % 8))) != 0)
            {
                agree++;
            }
            else
            {
                disagree++;
            }
        }

        // Only a partially written block can tell extents apart: a full bitmap agrees with anything.
        if (agree + disagree < 8 || !bitmap.AsSpan().ContainsAnyExcept((byte)0xFF))
        {
            return null;
        }

        var share = (double)agree / (agree + disagree);
        return share >= 0.9 ? share : share - 1;
    }

    /// <summary>
    /// ext4 superblocks in <paramref name="p"/> checked against <paramref name="v"/>'s BAT: a superblock of group g
    /// sits at guest offset 1024 (g = 0) or (s_first_data_block + g x s_blocks_per_group) x block size (Linux
    /// fs/ext4/super.c, ext4_group_first_block_no); the BAT says which LV byte holds that guest offset. The same
    /// extent and offset is a match; a superblock where the BAT puts other guest data (a stale one of a deleted
    /// VDI, another VDI's file system) contradicts the candidate. Null when the PE holds no superblock.
    /// </summary>
    internal static (double Delta, string Evidence)? Ext4Agreement(CarvedVdi v, long le, CarvePe p, long extent)
    {
        if (p.Ext4.Count == 0)
        {
            return null;
        }

        var blockBytes = (long)v.Header.BlockSizeBytes;
        var bitmapBytes = v.Header.BitmapSizeSectors * 512;
        var matches = new List<string>();
        var contradictions = new List<string>();
        foreach (var h in p.Ext4)
        {
            long guest;
            try
            {
                guest = h.GroupNumber == 0 ? 1024 : checked((h.FirstDataBlock + ((long)h.GroupNumber * h.BlocksPerGroup)) * h.BlockSizeBytes);
            }
            catch (OverflowException)
            {
                continue;
            }

            var block = guest / blockBytes;
            long? lvByte = block < v.Bat.Length && v.Bat[block] != VhdBat.Unallocated ? (v.Bat[block] * 512L) + bitmapBytes + (guest % blockBytes) : null;
            var what = $"ext4 superblock of group {h.GroupNumber} (fs {h.FsUuid}) @0x{h.OffsetInExtent:X}";
            if (lvByte is { } at && at / extent == le && at % extent == h.OffsetInExtent)
            {
                matches.Add($"{what}, exactly where the BAT puts guest offset 0x{guest:X}");
            }
            else
            {
                contradictions.Add($"{what}, but the BAT puts guest offset 0x{guest:X} " + (lvByte is { } b ? $"in LE {b / extent} @0x{b % extent:X}" : "in an unallocated block"));
            }
        }

        if (matches.Count > 0)
        {
            return (Ext4MatchBonus, string.Join("; ", matches));
        }

        return contradictions.Count == 0 ? null : (-Ext4MatchBonus, "contradicted: " + string.Join("; ", contradictions));
    }

    /// <summary>
    /// The block whose data starts in LE <paramref name="le"/> - 1 and ends inside LE <paramref name="le"/>: where it
    /// ends in the next extent and which of its sectors there the guest wrote (all when full per the batmap, else
    /// the bitmap sector seen in <paramref name="before"/>). Null when no block crosses or its bitmap is unknown.
    /// </summary>
    private static (int Block, long EndInNext, bool[] Written)? Crossing(CarvedVdi v, long le, long extent, HashSet<int>? full, CarvePe before)
    {
        var blockBytes = (long)v.Header.BlockSizeBytes;
        var bitmapBytes = v.Header.BitmapSizeSectors * 512;
        var start = le * extent;
        for (var b = 0; b < v.Bat.Length; b++)
        {
            if (v.Bat[b] == VhdBat.Unallocated)
            {
                continue;
            }

            var bitmapAt = v.Bat[b] * 512L;
            var dataStart = bitmapAt + bitmapBytes;
            var dataEnd = dataStart + blockBytes;
            if (dataStart >= start || dataEnd <= start || dataEnd > start + extent || bitmapAt < start - extent)
            {
                continue;
            }

            var sectors = (int)((dataEnd - start) / 512);
            var first = (int)(blockBytes / 512) - sectors;
            var written = new bool[sectors];
            if (full?.Contains(b) == true)
            {
                Array.Fill(written, true);
            }
            else
            {
                var pos = (bitmapAt % extent - CarveScanner.BitmapPhaseBytes) / CarveScanner.GridBytes;
                var idx = before.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
                if (idx < 0 || bitmapBytes != 512)
                {
                    return null;
                }

                var bitmap = before.BitmapSectors[idx];
                for (var i = 0; i < sectors; i++)
                {
                    written[i] = (bitmap[(first + i) / 8] & (0x80 >> ((first + i) % 8))) != 0;
                }
            }

            return (b, dataEnd - start, written);
        }

        return null;
    }

    /// <summary>
    /// At least 8 sectors the block's bitmap marks written, 98 % of them non-zero in <paramref name="p"/>, and the
    /// sector right after the block's end zero (the next block's zero-written gap, or space the guest never wrote).
    /// </summary>
    private static bool ContinuationFits(CarvePe p, long endInNext, bool[] written)
    {
        bool NonZero(long s) => s < p.NonZeroSectors.Length * 64L && (p.NonZeroSectors[s >> 6] & (1UL << (int)(s & 63))) != 0;
        int expected = 0, seen = 0;
        for (var i = 0; i < written.Length; i++)
        {
            if (written[i])
            {
                expected++;
                seen += NonZero(i) ? 1 : 0;
            }
        }

        var after = endInNext / 512;
        return expected >= 8 && seen >= expected * 0.98 && (after >= p.NonZeroSectors.Length * 64L || !NonZero(after));
    }

    /// <summary>PE observations contain every expected bitmap position; flagsAgree when full/partial match too.</summary>
    private static bool Fits(List<ushort>? expected, CarvePe p, out bool flagsAgree)
    {
        flagsAgree = true;
        if (expected is null)
        {
            return true;
        }

        foreach (var e in expected)
        {
            var pos = e & PositionMask;
            var idx = p.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
            if (idx < 0)
            {
                return false;
            }

            // Bit 14 marks "flag known" in expectations; compare full/partial only then.
            if ((e & KnownFlag) != 0 && ((e & CarveScanner.FullFlag) != 0) != ((p.Bitmaps[idx] & CarveScanner.FullFlag) != 0))
            {
                flagsAgree = false;
            }
        }

        return true;
    }

    private static bool BatmapFits(CarvedVdi v, CarvePe p)
    {
        var h = p.BatmapHeader!;
        var expectedOffset = VhdBatmapHeader.HeaderOffsetBytes(v.Header) + 512;
        if ((long)h.BatmapOffsetBytes != expectedOffset || p.Batmap is not { } map)
        {
            return false;
        }

        for (var i = 0; i < map.Length; i++)
        {
            for (var bit = 0; bit < 8 && map[i] != 0; bit++)
            {
                if ((map[i] & (0x80 >> bit)) != 0)
                {
                    var block = (i * 8) + bit;
                    if (block >= v.Bat.Length || v.Bat[block] == VhdBat.Unallocated)
                    {
                        return false;
                    }
                }
            }
        }

        var padded = new byte[VhdBatmapHeader.ChecksumLengthBytes(v.Footer.CurrentSizeBytes)];
        map.AsSpan(0, Math.Min(map.Length, padded.Length)).CopyTo(padded);
        return h.ComputeChecksum(padded, v.Footer.CurrentSizeBytes) == h.StoredChecksum;
    }

    private static HashSet<int>? FullBlocks(CarvePe p)
    {
        if (p.Batmap is not { } map)
        {
            return null;
        }

        var set = new HashSet<int>();
        for (var i = 0; i < map.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                if ((map[i] & (0x80 >> bit)) != 0)
                {
                    set.Add((i * 8) + bit);
                }
            }
        }

        return set;
    }

    /// <summary>The full-block set when every fitting batmap agrees on it; null when unknown.</summary>
    private static HashSet<int>? KnownFullBlocks(CarvedVdi v, List<CarvePe> batmaps)
    {
        HashSet<int>? known = null;
        foreach (var b in batmaps.Where(b => BatmapFits(v, b)))
        {
            var set = new HashSet<int>();
            for (var i = 0; i < b.Batmap!.Length; i++)
            {
                for (var bit = 0; bit < 8; bit++)
                {
                    if ((b.Batmap[i] & (0x80 >> bit)) != 0)
                    {
                        set.Add((i * 8) + bit);
                    }
                }
            }

            if (known is null)
            {
                known = set;
            }
            else if (!known.SetEquals(set))
            {
                return null;
            }
        }

        return known;
    }

    /// <summary>Per LE: bitmap positions the BAT predicts (bit 15 full, bit 14 = full/partial known).</summary>
    private static Dictionary<long, List<ushort>> ExpectedBitmaps(CarvedVdi v, long extent, HashSet<int>? full)
    {
        var result = new Dictionary<long, List<ushort>>();
        // batmap header + 128 KiB batmap + three 512-byte locators (xenserver-lvhd.md 2.8): 0x420E00 for SM VHDs.
        var metadataEnd = VhdBatmapHeader.HeaderOffsetBytes(v.Header) + 512 + (128 * 1024) + (3 * 512);
        for (var b = 0; b < v.Bat.Length; b++)
        {
            var e = v.Bat[b];
            if (e == VhdBat.Unallocated)
            {
                continue;
            }

            var at = e * 512L;
            var le = at / extent;
            var off = at % extent;
            if (off < CarveScanner.BitmapPhaseBytes || (off - CarveScanner.BitmapPhaseBytes) % CarveScanner.GridBytes != 0)
            {
                continue;
            }

            // The gap before the first block is metadata (batmap tail, differencing locators), not zero-written.
            if (v.Footer.DiskType == VhdDiskType.Differencing && at - CarveScanner.BitmapPhaseBytes < metadataEnd)
            {
                continue;
            }

            var pos = (ushort)((off - CarveScanner.BitmapPhaseBytes) / CarveScanner.GridBytes);
            if (full is not null)
            {
                pos |= KnownFlag;
                if (full.Contains(b))
                {
                    pos |= CarveScanner.FullFlag;
                }
            }

            if (!result.TryGetValue(le, out var list))
            {
                result[le] = list = [];
            }

            list.Add(pos);
        }

        foreach (var list in result.Values)
        {
            list.Sort((a, b) => (a & PositionMask).CompareTo(b & PositionMask));
        }

        return result;
    }
}
