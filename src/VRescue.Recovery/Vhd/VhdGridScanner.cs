// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Finds blocks no valid BAT entry references by looking where the allocation pattern puts them. tapdisk and libvhd
/// allocate at the end of data with the bitmap sector at (entry + 1) % 8 == 0, so blocks sit 4104 sectors apart
/// (research §2.5, §6); qemu packs them 4097 sectors apart after the BAT. The stride and phase are taken from the
/// entries that are still valid; a grid position whose bitmap sector is not all zero is a block.
/// </summary>
public static class VhdGridScanner
{
    public static List<VhdOrphanBlock> Scan(IBlockSource source, VhdDynamicHeader header, IReadOnlyList<long> validBitmapOffsets,
        long metadataEndBytes, long dataEndBytes, long spanSectors, List<Finding> findings)
    {
        var aligned = validBitmapOffsets.Count(o => (o / 512 + 1) % 8 == 0);
        var xenGrid = validBitmapOffsets.Count == 0 ? VhdBatmapPresent(header) : aligned * 10 >= validBitmapOffsets.Count * 9;
        var strideSectors = xenGrid ? (spanSectors + 7) / 8 * 8 : spanSectors;
        var firstSector = (metadataEndBytes + 511) / 512;
        if (xenGrid)
        {
            while ((firstSector + 1) % 8 != 0)
            {
                firstSector++;
            }
        }

        var phase = validBitmapOffsets.Count > 0 ? validBitmapOffsets.Min() / 512 % strideSectors : firstSector % strideSectors;
        var start = firstSector + ((phase - firstSector % strideSectors) % strideSectors + strideSectors) % strideSectors;
        var used = validBitmapOffsets.Select(o => o / 512).Order().ToArray();
        var bitmap = new byte[header.BitmapSizeSectors * 512];
        var orphans = new List<VhdOrphanBlock>();
        for (var s = start; (s + spanSectors) * 512 <= dataEndBytes; s += strideSectors)
        {
            if (Overlaps(used, s, spanSectors))
            {
                continue;
            }

            source.ReadZeroFilled(s * 512, bitmap);
            if (!bitmap.AsSpan().ContainsAnyExcept((byte)0))
            {
                continue;
            }

            var present = VhdBitmap.CountSet(bitmap, header.BlockSizeBytes / 512);
            if (orphans.Count >= VhdRecoveryAnalyzer.MaxOrphans)
            {
                findings.Add(new Finding("VHD_ORPHANS_TRUNCATED", Severity.Info, $"only the first {VhdRecoveryAnalyzer.MaxOrphans} orphan blocks are listed", s * 512));
                break;
            }

            orphans.Add(new VhdOrphanBlock(s * 512, present, (s + header.BitmapSizeSectors) * 512, header.BlockSizeBytes));
        }

        return orphans;
    }

    // SM VHDs (creator tap, batmap after a 2 TiB BAT) always use the aligned grid.
    private static bool VhdBatmapPresent(VhdDynamicHeader header) => header.MaxTableEntries == VhdRecoveryAnalyzer.SmMaxTableEntries;

    private static bool Overlaps(long[] sortedStarts, long s, long span)
    {
        var i = Array.BinarySearch(sortedStarts, s);
        if (i >= 0)
        {
            return true;
        }

        i = ~i;
        return (i < sortedStarts.Length && sortedStarts[i] < s + span) || (i > 0 && sortedStarts[i - 1] + span > s);
    }
}
