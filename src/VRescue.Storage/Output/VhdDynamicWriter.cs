// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Vhd;

namespace VRescue.Storage.Output;

/// <summary>
/// Writes a dynamic VHD the way tapdisk lays one out (blktap libvhd; research brief section 2.8): footer copy at 0,
/// dynamic header at 512, BAT at 1536 sized for the virtual size, batmap header and batmap, then 2 MiB blocks of
/// one bitmap sector + data with the data on a 4 KiB boundary (BAT entry + 1 divisible by 8), footer at the end.
/// All-zero blocks stay unallocated; every written block is complete, so its bitmap is all ones and the batmap marks
/// it full. Creator "tap" 1.3 makes qemu use the footer's current size rather than CHS (qemu block/vpc.c).
/// Blocks may be written from several threads; placement follows the order of <see cref="WriteBlock"/> calls.
/// </summary>
public sealed class VhdDynamicWriter : IDisposable
{
    public const int BlockSizeBytes = (int)VhdDynamicHeader.DefaultBlockSizeBytes;
    private const int SectorBytes = 512;
    private const long BitmapSectors = 1;
    private const long BlockSectors = BlockSizeBytes / SectorBytes;

    private static readonly byte[] s_fullBitmap = Enumerable.Repeat((byte)0xFF, SectorBytes).ToArray();

    private readonly OutputFile _file;
    private readonly uint[] _bat;
    private readonly byte[] _batmap;
    private readonly long _tableOffsetBytes;
    private readonly long _batmapHeaderOffsetBytes;
    private readonly long _batmapOffsetBytes;
    private readonly uint _batmapSizeSectors;
    private readonly object _lock = new();
    private long _nextBitmapSector;
    private int _allocated;

    private VhdDynamicWriter(OutputFile file, long virtualSizeBytes, Guid uuid, DateTimeOffset timestamp)
    {
        _file = file;
        VirtualSizeBytes = virtualSizeBytes;
        Uuid = uuid;
        Timestamp = timestamp;
        BlockCount = (int)((virtualSizeBytes + BlockSizeBytes - 1) / BlockSizeBytes);
        _bat = Enumerable.Repeat(VhdBat.Unallocated, BlockCount).ToArray();
        _tableOffsetBytes = SectorBytes + VhdDynamicHeaderLayout.Size;
        var tableBytes = RoundUp(BlockCount * 4L, SectorBytes);
        _batmapHeaderOffsetBytes = _tableOffsetBytes + tableBytes;
        _batmapOffsetBytes = _batmapHeaderOffsetBytes + SectorBytes;
        _batmapSizeSectors = (uint)Math.Max(1, RoundUp((BlockCount + 7) / 8, SectorBytes) / SectorBytes);
        _batmap = new byte[_batmapSizeSectors * SectorBytes];
        _nextBitmapSector = AlignBitmapSector((_batmapOffsetBytes / SectorBytes) + _batmapSizeSectors);
    }

    public long VirtualSizeBytes { get; }

    public Guid Uuid { get; }

    public DateTimeOffset Timestamp { get; }

    public int BlockCount { get; }

    /// <summary>Blocks written so far (non-zero blocks).</summary>
    public int AllocatedBlocks => Volatile.Read(ref _allocated);

    public string FinalPath => _file.FinalPath;

    /// <summary>Starts a VHD of <paramref name="virtualSizeBytes"/> (a multiple of 512) under a temporary name.</summary>
    public static VhdDynamicWriter Create(string finalPath, long virtualSizeBytes, Guid? uuid = null, DateTimeOffset? timestamp = null)
    {
        if (virtualSizeBytes <= 0 || virtualSizeBytes % SectorBytes != 0 || (ulong)virtualSizeBytes > VhdFooter.MaxCurrentSizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(virtualSizeBytes), $"virtual size {virtualSizeBytes} must be a positive multiple of 512 up to {VhdFooter.MaxCurrentSizeBytes}");
        }

        return new VhdDynamicWriter(OutputFile.Create(finalPath), virtualSizeBytes, uuid ?? Guid.NewGuid(), timestamp ?? DateTimeOffset.UtcNow);
    }

    /// <summary>
    /// Writes guest block <paramref name="block"/> (<paramref name="data"/> up to 2 MiB; a short last block is padded
    /// with zeros). Returns false, writing nothing, when the data is all zeros.
    /// </summary>
    public bool WriteBlock(long block, ReadOnlySpan<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, BlockCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(data.Length, BlockSizeBytes);
        if (!data.ContainsAnyExcept((byte)0))
        {
            return false;
        }

        long bitmapSector;
        lock (_lock)
        {
            if (_bat[block] != VhdBat.Unallocated)
            {
                throw new InvalidOperationException($"block {block} written twice");
            }

            bitmapSector = _nextBitmapSector;
            if (bitmapSector > uint.MaxValue - 1)
            {
                throw new InvalidOperationException("VHD grows past the 2 TiB a 32-bit BAT sector number can address");
            }

            _bat[block] = (uint)bitmapSector;
            _nextBitmapSector = AlignBitmapSector(bitmapSector + BitmapSectors + BlockSectors);
            _allocated++;
        }

        var bitmapOffset = bitmapSector * SectorBytes;
        _file.Write(bitmapOffset, s_fullBitmap);
        // A short last block leaves its tail unwritten: a hole that reads as zeros; Commit puts the footer after it.
        _file.Write(bitmapOffset + SectorBytes, data);

        return true;
    }

    /// <summary>Writes BAT, batmap, header and both footers and renames the file into place.</summary>
    public void Commit()
    {
        long end;
        lock (_lock)
        {
            end = _allocated == 0 ? _nextBitmapSector * SectorBytes : (_bat.Where(e => e != VhdBat.Unallocated).Max() + BitmapSectors + BlockSectors) * SectorBytes;
        }

        var footer = BuildFooter();
        var footerBytes = new byte[SectorBytes];
        footer.Encode(footerBytes);

        var header = new VhdDynamicHeader
        {
            TableOffsetBytes = (ulong)_tableOffsetBytes,
            MaxTableEntries = (uint)BlockCount,
            BlockSizeBytes = BlockSizeBytes,
        };
        var headerBytes = new byte[VhdDynamicHeaderLayout.Size];
        header.Encode(headerBytes);

        var table = new byte[RoundUp(BlockCount * 4L, SectorBytes)];
        for (var i = 0; i < _bat.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(table.AsSpan(i * 4), _bat[i]);
            if (_bat[i] != VhdBat.Unallocated)
            {
                VhdBitmap.Set(_batmap, i);
            }
        }

        table.AsSpan(_bat.Length * 4).Fill(0xFF);
        var batmapHeader = new VhdBatmapHeader { BatmapOffsetBytes = (ulong)_batmapOffsetBytes, BatmapSizeSectors = _batmapSizeSectors };
        var batmapHeaderBytes = new byte[SectorBytes];
        batmapHeader.Encode(batmapHeaderBytes, _batmap, (ulong)VirtualSizeBytes);

        _file.Write(0, footerBytes);
        _file.Write(SectorBytes, headerBytes);
        _file.Write(_tableOffsetBytes, table);
        _file.Write(_batmapHeaderOffsetBytes, batmapHeaderBytes);
        _file.Write(_batmapOffsetBytes, _batmap);
        _file.Write(end, footerBytes);
        _file.SetLength(end + SectorBytes);
        _file.Commit();
    }

    public void Dispose() => _file.Dispose();

    private VhdFooter BuildFooter()
    {
        var (cylinders, heads, sectors) = Geometry(VirtualSizeBytes);
        return new VhdFooter
        {
            DataOffsetBytes = SectorBytes,
            TimestampSeconds = (uint)Math.Clamp(Timestamp.ToUnixTimeSeconds() - VhdFooter.VhdEpochUnixSeconds, 0, uint.MaxValue),
            CreatorApplication = "tap\0",
            CreatorVersion = 0x00010003,
            OriginalSizeBytes = (ulong)VirtualSizeBytes,
            CurrentSizeBytes = (ulong)VirtualSizeBytes,
            GeometryCylinders = cylinders,
            GeometryHeads = heads,
            GeometrySectorsPerTrack = sectors,
            DiskType = VhdDiskType.Dynamic,
            Uuid = Uuid,
        };
    }

    /// <summary>CHS geometry per the VHD specification (appendix "CHS calculation"); informational, readers use current size.</summary>
    internal static (ushort Cylinders, byte Heads, byte SectorsPerTrack) Geometry(long sizeBytes)
    {
        var total = Math.Min(sizeBytes / SectorBytes, 65535L * 16 * 255);
        long spt, heads, cth;
        if (total >= 65535L * 16 * 63)
        {
            spt = 255;
            heads = 16;
            cth = total / spt;
        }
        else
        {
            spt = 17;
            cth = total / spt;
            heads = Math.Max(4, (cth + 1023) / 1024);
            if (cth >= heads * 1024 || heads > 16)
            {
                spt = 31;
                heads = 16;
                cth = total / spt;
            }

            if (cth >= heads * 1024)
            {
                spt = 63;
                heads = 16;
                cth = total / spt;
            }
        }

        return ((ushort)(cth / heads), (byte)heads, (byte)spt);
    }

    /// <summary>tapdisk puts block data on a 4 KiB boundary: bitmap sector s with (s + 1) % 8 == 0.</summary>
    private static long AlignBitmapSector(long sector) => sector + ((8 - ((sector + 1) % 8)) % 8);

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}
