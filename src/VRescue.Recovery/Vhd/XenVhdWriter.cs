// SPDX-License-Identifier: MIT
using Microsoft.Win32.SafeHandles;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Writes a dynamic VHD the way XenServer's SM lays it out (research §2.8): footer copy at 0, header at 0x200, BAT for
/// 2 TiB at 0x600, tdbatmap header and batmap after it, blocks on the 4 KiB-aligned grid (bitmap at (entry + 1) % 8 == 0,
/// 4104 sectors apart), footer at the end. Zero runs are left as holes. Raw output goes through the shared
/// Storage/Output SparseRawWriter; this VHD writer stays separate from Storage/Output/VhdDynamicWriter because repair
/// needs what the export writer does not do: SM's 2 TiB BAT (batmap at 0x400600) rather than a BAT sized to the disk,
/// partial sector bitmaps carried over per block (export writes only full blocks), blocks allocated by their bitmap
/// even when their data is zero, and the template footer's uuid, hidden flag and timestamps kept so children and SM
/// still recognise the disk.
/// </summary>
public static class XenVhdWriter
{
    private const int BlockBytes = (int)VhdDynamicHeader.DefaultBlockSizeBytes;
    private const long StrideSectors = 4104;

    /// <summary>Writes <paramref name="guest"/> as a dynamic VHD to an open, empty, writable file.</summary>
    /// <remarks>template: Footer fields to keep (uuid, timestamps, hidden, creator); size, type, geometry and offsets are set here.</remarks>
    /// <remarks>sectorBitmap: Sector bitmap per guest block; null = unallocated. Data is taken from <paramref name="guest"/>.</remarks>
    /// <returns>Bytes of the finished file.</returns>
    /// <remarks>parent: for a differencing output, the parent it names (header fields and locators); null writes a dynamic disk.</remarks>
    public static long Write(SafeFileHandle file, VhdFooter template, IBlockSource guest, Func<long, byte[]?> sectorBitmap,
        IProgress<long>? progress = null, CancellationToken cancel = default, VhdParentLink? parent = null)
    {
        var size = guest.LengthBytes;
        var blocks = (size + BlockBytes - 1) / BlockBytes;
        var maxEntries = (uint)Math.Max(blocks, VhdRecoveryAnalyzer.SmMaxTableEntries);
        var header = new VhdDynamicHeader { TableOffsetBytes = 0x600, MaxTableEntries = maxEntries, BlockSizeBytes = (uint)BlockBytes };
        var batmapHeaderAt = VhdBatmapHeader.HeaderOffsetBytes(header);
        var batmapSectors = (uint)(((maxEntries + 7) / 8 + 511) / 512);
        var batmapAt = batmapHeaderAt + 512;
        var next = (batmapAt + batmapSectors * 512L) / 512;
        if (parent is not null)
        {
            // Locator data right after the batmap, one 512-byte sector each, as vhd-util snapshot places it (sample: 0x420800).
            var locators = new List<VhdParentLocator>();
            foreach (var (code, text) in parent.Locators.Take(VhdDynamicHeaderLayout.ParentLocatorCount))
            {
                var bytes = VhdParentLocator.EncodeText(code, text);
                if (bytes.Length > 512)
                {
                    throw new UnsupportedFormatFeatureException("VHD", "locator", $"parent locator text longer than 512 bytes: {text}");
                }

                var sector = new byte[512];
                bytes.CopyTo(sector, 0);
                RandomAccess.Write(file, sector, next * 512);
                locators.Add(new VhdParentLocator(code, 512, (uint)bytes.Length, 0, (ulong)(next * 512)));
                next++;
            }

            while (locators.Count < VhdDynamicHeaderLayout.ParentLocatorCount)
            {
                locators.Add(new VhdParentLocator(0, 0, 0, 0, 0));
            }

            header = header with
            {
                ParentUuid = parent.Uuid,
                ParentTimestampSeconds = parent.TimestampSeconds,
                ParentUnicodeName = parent.Name,
                ParentLocators = locators,
            };
        }

        while ((next + 1) % 8 != 0)
        {
            next++;
        }

        var bat = Enumerable.Repeat(VhdBat.Unallocated, (int)blocks).ToArray();
        var batmap = new byte[batmapSectors * 512];
        var data = new byte[BlockBytes];
        for (long i = 0; i < blocks; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var bitmap = sectorBitmap(i);
            if (bitmap is null)
            {
                continue;
            }

            bat[i] = checked((uint)next);
            var n = (int)Math.Min(BlockBytes, size - i * BlockBytes);
            guest.ReadExactlyAt(i * BlockBytes, data.AsSpan(0, n));
            data.AsSpan(n).Clear();
            var bm = new byte[512];
            bitmap.AsSpan(0, Math.Min(512, bitmap.Length)).CopyTo(bm);
            RandomAccess.Write(file, bm, next * 512);
            WriteSparse(file, data, (next + 1) * 512);
            if (!bm.AsSpan().ContainsAnyExcept((byte)0xFF))
            {
                VhdBitmap.Set(batmap, i);
            }

            next += StrideSectors;
            progress?.Report((i + 1) * BlockBytes);
        }

        var footer = template with
        {
            Cookie = "conectix",
            DiskType = parent is null ? VhdDiskType.Dynamic : VhdDiskType.Differencing,
            DataOffsetBytes = 512,
            CurrentSizeBytes = (ulong)size,
            OriginalSizeBytes = template.OriginalSizeBytes == 0 ? (ulong)size : template.OriginalSizeBytes,
            CreatorApplication = "tap\0",
            CreatorVersion = 0x00010003,
        };
        var g = VhdGeometry.FromSize((ulong)size);
        footer = footer with { GeometryCylinders = g.Cylinders, GeometryHeads = g.Heads, GeometrySectorsPerTrack = g.SectorsPerTrack };
        var footerBytes = new byte[512];
        footer.Encode(footerBytes);
        var headerBytes = new byte[VhdDynamicHeaderLayout.Size];
        header.Encode(headerBytes);
        var batBytes = new byte[header.TableSizeBytes];
        VhdBat.FromEntries(bat, 0x600).Encode(batBytes);
        var batmapHeader = new VhdBatmapHeader { BatmapOffsetBytes = (ulong)batmapAt, BatmapSizeSectors = batmapSectors };
        var batmapHeaderBytes = new byte[512];
        batmapHeader.Encode(batmapHeaderBytes, batmap, (ulong)size);

        RandomAccess.Write(file, footerBytes, 0);
        RandomAccess.Write(file, headerBytes, 512);
        RandomAccess.Write(file, batBytes, 0x600);
        RandomAccess.Write(file, batmapHeaderBytes, batmapHeaderAt);
        WriteSparse(file, batmap, batmapAt);
        var end = next * 512;
        RandomAccess.Write(file, footerBytes, end);
        RandomAccess.SetLength(file, end + 512);
        return end + 512;
    }

    private static void WriteSparse(SafeFileHandle file, ReadOnlySpan<byte> data, long offset)
    {
        const int Chunk = 64 * 1024;
        for (var pos = 0; pos < data.Length;)
        {
            var n = Math.Min(Chunk, data.Length - pos);
            var part = data.Slice(pos, n);
            if (part.ContainsAnyExcept((byte)0))
            {
                // Coalesce consecutive non-zero chunks into one write.
                var end = pos + n;
                while (end < data.Length && data.Slice(end, Math.Min(Chunk, data.Length - end)).ContainsAnyExcept((byte)0))
                {
                    end += Math.Min(Chunk, data.Length - end);
                }

                RandomAccess.Write(file, data[pos..end], offset + pos);
                pos = end;
            }
            else
            {
                pos += n;
            }
        }
    }
}

/// <summary>The parent a differencing output names: footer uuid and modification time of the parent, its name, and locator texts by code.</summary>
public sealed record VhdParentLink(Guid Uuid, uint TimestampSeconds, string Name, IReadOnlyList<(uint Code, string Text)> Locators);
