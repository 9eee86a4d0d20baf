// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Writes SM-layout VHD LVs onto a PV at chosen PEs (same layout as tests/fixtures/carve/xenvhd.py, which is checked
/// byte for byte against the vhd-util samples): footer copy, header, 2 TiB BAT, batmap, bitmap sectors on the
/// 4104-sector grid with their zero gap, a little data per block, primary footer at LV end - 512. Used for hostile
/// and ambiguity tests and for the solver benchmark (a sink that writes into a sparse file).
/// </summary>
public sealed class CarveSyntheticPv(long extentBytes = 4L << 20)
{
    public const long PeStartBytes = 11L << 20;
    private const int MaxBat = 0x100000;
    private const long FirstBitmapSector = 8455;
    private const long BlockSpanSectors = 4104;

    public long ExtentBytes { get; } = extentBytes;

    /// <summary>Inflated LV extent count SM gives a leaf of <paramref name="virtualBytes"/> (lvhdutil.calcSizeVHDLV).</summary>
    public long InflatedExtents(long virtualBytes) =>
        (virtualBytes + 4_329_472 + ((virtualBytes + (2L << 20) - 1) / (2L << 20) * 4096) + ExtentBytes - 1) / ExtentBytes;

    /// <summary>
    /// Writes one VHD LV. <paramref name="pes"/>[le] is the PE of each logical extent; <paramref name="allocated"/>
    /// blocks get BAT entries in order; <paramref name="partial"/> blocks get a partial bitmap (first 3/4 of sectors).
    /// </summary>
    public void WriteVhd(Action<long, ReadOnlySpan<byte>> write, Guid uuid, long virtualBytes, IReadOnlyList<long> pes, int allocated,
        Func<int, bool>? partial = null, byte hidden = 0)
    {
        void Lv(long lvOffset, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var le = (int)(lvOffset / ExtentBytes);
                var inExtent = lvOffset % ExtentBytes;
                var n = (int)Math.Min(bytes.Length, ExtentBytes - inExtent);
                write(PeStartBytes + (pes[le] * ExtentBytes) + inExtent, bytes[..n]);
                bytes = bytes[n..];
                lvOffset += n;
            }
        }

        var footer = new VhdFooter
        {
            DataOffsetBytes = 512, TimestampSeconds = 1000, CreatorVersion = 0x00010003, OriginalSizeBytes = (ulong)virtualBytes,
            CurrentSizeBytes = (ulong)virtualBytes, DiskType = VhdDiskType.Dynamic, Uuid = uuid, Hidden = hidden,
        };
        var f = new byte[512];
        footer.Encode(f);
        var header = new VhdDynamicHeader { TableOffsetBytes = 0x600, MaxTableEntries = MaxBat };
        var h = new byte[1024];
        header.Encode(h);
        var bat = new byte[MaxBat * 4];
        bat.AsSpan().Fill(0xFF);
        var batmap = new byte[MaxBat / 8];
        var bitmapFull = new byte[512];
        bitmapFull.AsSpan().Fill(0xFF);
        var bitmapPartial = new byte[512];
        bitmapPartial.AsSpan(0, 384).Fill(0xFF);
        var data = new byte[512];
        for (var k = 0; k < allocated; k++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bat.AsSpan(k * 4), (uint)(FirstBitmapSector + (BlockSpanSectors * k)));
            var isPartial = partial?.Invoke(k) ?? false;
            if (!isPartial)
            {
                batmap[k / 8] |= (byte)(0x80 >> (k % 8));
            }

            var bm = (FirstBitmapSector + (BlockSpanSectors * k)) * 512;
            Lv(bm - 3584, new byte[3584]);
            Lv(bm, isPartial ? bitmapPartial : bitmapFull);
            BinaryPrimitives.WriteInt64BigEndian(data, (uuid.GetHashCode() * 31L) + k + 1);
            Lv(bm + 512, data);
        }

        var batmapHeader = new VhdBatmapHeader { BatmapOffsetBytes = 0x400800, BatmapSizeSectors = 256 };
        var bh = new byte[512];
        batmapHeader.Encode(bh, batmap, (ulong)virtualBytes);
        Lv(0, f);
        Lv(512, h);
        Lv(0x600, bat);
        Lv(0x400600, bh);
        Lv(0x400800, batmap);
        Lv((pes.Count * ExtentBytes) - 512, f);
    }

    /// <summary>
    /// The solver benchmark's layout (bench/carve): <paramref name="vdis"/> inflated leaves of about
    /// <paramref name="extents"/> / <paramref name="vdis"/> extents each; LE 0 and 1 of every VDI side by side (one
    /// lvcreate), then the LVs grow round robin by 1-3 extents (lvextend runs, seeded) until they are full or the PV
    /// ends. Only complete VDIs are written; block k of VDI i is partial when <paramref name="partial"/>(i, k) (default:
    /// every third block, shifted by i). Returns the truth: footer uuid -> PE of each logical extent.
    /// </summary>
    public CarveSyntheticLayout WriteInterleaved(Action<long, ReadOnlySpan<byte>> write, long extents, int vdis, Func<int, int, bool>? partial = null, int seed = 42)
    {
        partial ??= (i, k) => (k + i) % 3 == 0;
        var per = Math.Max(4, extents / vdis);
        var virtualBytes = ((per * ExtentBytes) - 4_329_472 - (per * 2048) - ExtentBytes) / (2L << 20) * (2L << 20);
        var count = InflatedExtents(virtualBytes);
        var maps = Enumerable.Range(0, vdis).Select(_ => new List<long>()).ToList();
        var rnd = new Random(seed);
        long next = 0;
        for (var i = 0; i < vdis; i++)
        {
            maps[i].Add(next++);
            maps[i].Add(next++);
        }

        while (maps.Any(m => m.Count < count) && next < extents)
        {
            for (var i = 0; i < vdis && next < extents; i++)
            {
                for (var k = rnd.Next(1, 4); k > 0 && maps[i].Count < count && next < extents; k--)
                {
                    maps[i].Add(next++);
                }
            }
        }

        var blocks = (int)(virtualBytes / (2L << 20));
        var truth = new Dictionary<Guid, IReadOnlyList<long>>();
        var uuids = new List<Guid>();
        for (var i = 0; i < vdis; i++)
        {
            var uuid = new Guid(i + 1, 0, 0, new byte[8]);
            uuids.Add(uuid);
            if (maps[i].Count == count)
            {
                var vdi = i;
                WriteVhd(write, uuid, virtualBytes, maps[i], blocks, k => partial(vdi, k));
                truth[uuid] = maps[i];
            }
        }

        return new CarveSyntheticLayout(count, blocks, uuids, truth);
    }

    /// <summary>A memory PV of <paramref name="peCount"/> extents and its writer.</summary>
    public static (byte[] Bytes, Action<long, ReadOnlySpan<byte>> Write) Memory(long peCount, long extentBytes = 4L << 20)
    {
        var bytes = new byte[PeStartBytes + (peCount * extentBytes)];
        return (bytes, (o, b) => b.CopyTo(bytes.AsSpan((int)o)));
    }
}

/// <summary>What <see cref="CarveSyntheticPv.WriteInterleaved"/> wrote: LV size, blocks per VDI, uuid of VDI i, and the
/// PE of every logical extent of each complete VDI (by footer uuid).</summary>
public sealed record CarveSyntheticLayout(long LvExtents, int BlocksPerVdi, IReadOnlyList<Guid> Uuids, IReadOnlyDictionary<Guid, IReadOnlyList<long>> Truth);
