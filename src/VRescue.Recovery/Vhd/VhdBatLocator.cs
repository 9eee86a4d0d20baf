// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>A BAT found by its structure when the dynamic header is lost.</summary>
/// <param name="TableOffsetBytes">Where the BAT starts.</param>
/// <param name="MaxTableEntries">Entries the BAT reserves (from the batmap position when found, else the run of BAT-like sectors).</param>
/// <param name="AllocatedEntries">Entries that point at blocks.</param>
/// <param name="BatmapHeaderOffsetBytes">The tdbatmap header right after the BAT, when present.</param>
public sealed record VhdBatCandidate(long TableOffsetBytes, uint MaxTableEntries, int AllocatedEntries, long? BatmapHeaderOffsetBytes);

/// <summary>
/// Finds the BAT without a header: sector-aligned runs of big-endian u32 entries, each 0xFFFFFFFF or the sector of a
/// block that lies after the BAT and inside the source, the allocated ones pairwise at least one block apart
/// (bitmap + data). XenServer and qemu both put it at 0x600; that position is tried first.
/// </summary>
public static class VhdBatLocator
{
    /// <summary>How far into the source the BAT is searched (SM BATs end at 4 MiB + 0x600).</summary>
    public const long ScanLimitBytes = 64L << 20;

    /// <summary>Looks for a BAT for blocks of <paramref name="blockSizeBytes"/>. Null when nothing BAT-like is found.</summary>
    public static VhdBatCandidate? Find(IBlockSource source, uint blockSizeBytes = VhdDynamicHeader.DefaultBlockSizeBytes)
    {
        var lengthSectors = source.LengthBytes / 512;
        var spanSectors = 1 + blockSizeBytes / 512;
        var limit = Math.Min(lengthSectors, ScanLimitBytes / 512);
        var sector = new byte[512];

        // Most VHDs: 0x600 (footer copy + header); then anything after the footer copy. A failed run is skipped
        // as a whole, so the scan reads each sector about once.
        var first = TryRun(source, 3, limit, lengthSectors, spanSectors, sector, out _);
        if (first is not null)
        {
            return first;
        }

        for (long start = 1; start < limit;)
        {
            var candidate = TryRun(source, start, limit, lengthSectors, spanSectors, sector, out var next);
            if (candidate is not null)
            {
                return candidate;
            }

            start = Math.Max(start + 1, next);
        }

        return null;
    }

    private static VhdBatCandidate? TryRun(IBlockSource source, long startSector, long limitSectors, long lengthSectors, long spanSectors, byte[] sector, out long nextSector)
    {
        var entries = new List<uint>();
        var lowestBlock = long.MaxValue;
        long s;
        long? batmapAt = null;
        for (s = startSector; s < limitSectors && s < lowestBlock; s++)
        {
            if (source.ReadAt(s * 512, sector) < 512)
            {
                break;
            }

            if (sector.AsSpan(0, 8).SequenceEqual(VhdBatmapHeader.CookieMagic))
            {
                batmapAt = s * 512;
                break;
            }

            var ok = true;
            var lowestHere = long.MaxValue;
            for (var i = 0; i < 128 && ok; i++)
            {
                var e = BinaryPrimitives.ReadUInt32BigEndian(sector.AsSpan(i * 4));
                if (e == VhdBat.Unallocated)
                {
                    continue;
                }

                ok = e > s && e + spanSectors <= lengthSectors;
                lowestHere = Math.Min(lowestHere, e);
            }

            if (!ok || lowestHere <= s)
            {
                break;
            }

            for (var i = 0; i < 128; i++)
            {
                entries.Add(BinaryPrimitives.ReadUInt32BigEndian(sector.AsSpan(i * 4)));
            }

            lowestBlock = Math.Min(lowestBlock, lowestHere);
        }

        nextSector = s;
        var allocated = entries.Where(e => e != VhdBat.Unallocated).Order().ToList();
        if (allocated.Count == 0 && batmapAt is null)
        {
            return null;
        }

        for (var k = 1; k < allocated.Count; k++)
        {
            if (allocated[k] - allocated[k - 1] < spanSectors)
            {
                return null;
            }
        }

        var max = batmapAt is { } b ? (b - startSector * 512) / 4 : entries.Count;
        if (max <= 0)
        {
            return null;
        }

        return new VhdBatCandidate(startSector * 512, (uint)Math.Min(max, uint.MaxValue), allocated.Count, batmapAt);
    }
}
