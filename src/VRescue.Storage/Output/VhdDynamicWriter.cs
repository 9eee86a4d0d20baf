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
/// With a <see cref="VhdParentLink"/> it writes a differencing VHD instead (disk type 4): header parent uuid, time
/// stamp and name, and MacX/W2ku/W2ru locators in the sectors after the batmap, as vhd-util writes them for files
/// (blktap libvhd vhd_parent_locator_write); blocks then carry their own sector bitmap and are kept even when zero.
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
    private readonly byte[] _full;
    private readonly VhdParentLink? _parent;
    private readonly long _locatorOffsetBytes;
    private readonly object _lock = new();
    private long _nextBitmapSector;
    private int _allocated;

    private VhdDynamicWriter(OutputFile file, long virtualSizeBytes, Guid uuid, DateTimeOffset timestamp, VhdParentLink? parent)
    {
        _file = file;
        _parent = parent;
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
        _full = new byte[_batmap.Length];
        _locatorOffsetBytes = _batmapOffsetBytes + (_batmapSizeSectors * SectorBytes);
        var locatorSectors = parent is null ? 0 : s_locatorCodes.Length * LocatorSectors;
        _nextBitmapSector = AlignBitmapSector((_locatorOffsetBytes / SectorBytes) + locatorSectors);
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

        return new VhdDynamicWriter(OutputFile.Create(finalPath), virtualSizeBytes, uuid ?? Guid.NewGuid(), timestamp ?? DateTimeOffset.UtcNow, null);
    }

    /// <summary>
    /// Starts a differencing VHD whose parent is the file <see cref="VhdParentLink.FileName"/> in the same directory.
    /// Write its blocks with <see cref="WriteDifferencingBlock"/>.
    /// </summary>
    public static VhdDynamicWriter CreateDifferencing(string finalPath, long virtualSizeBytes, VhdParentLink parent, Guid uuid, DateTimeOffset? timestamp = null)
    {
        if (virtualSizeBytes <= 0 || virtualSizeBytes % SectorBytes != 0 || (ulong)virtualSizeBytes > VhdFooter.MaxCurrentSizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(virtualSizeBytes), $"virtual size {virtualSizeBytes} must be a positive multiple of 512 up to {VhdFooter.MaxCurrentSizeBytes}");
        }

        if (parent.FileName.Length == 0 || parent.FileName.Contains('/') || parent.FileName.Contains('\\'))
        {
            throw new ArgumentException($"parent file name \"{parent.FileName}\" must be a plain name in the same directory", nameof(parent));
        }

        return new VhdDynamicWriter(OutputFile.Create(finalPath), virtualSizeBytes, uuid, timestamp ?? DateTimeOffset.UtcNow, parent);
    }

    /// <summary>True for a differencing VHD (created with <see cref="CreateDifferencing"/>).</summary>
    public bool IsDifferencing => _parent is not null;

    /// <summary>
    /// Writes guest block <paramref name="block"/> (<paramref name="data"/> up to 2 MiB; a short last block is padded
    /// with zeros). Returns false, writing nothing, when the data is all zeros.
    /// </summary>
    public bool WriteBlock(long block, ReadOnlySpan<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, BlockCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(data.Length, BlockSizeBytes);
        if (_parent is not null)
        {
            throw new InvalidOperationException("a differencing VHD takes blocks with their sector bitmap (WriteDifferencingBlock)");
        }

        if (!data.ContainsAnyExcept((byte)0))
        {
            return false;
        }

        Place(block, s_fullBitmap, data, full: true);
        return true;
    }

    /// <summary>
    /// Writes block <paramref name="block"/> of a differencing VHD with its 512-byte <paramref name="sectorBitmap"/>
    /// (bit set = sector present here, clear = read from the parent). Sectors whose bit is clear are written as zeros
    /// whatever <paramref name="data"/> holds there, so no stale bytes travel. Returns false, writing nothing, when
    /// no bit is set. Zero data under set bits is kept: it hides the parent's data.
    /// </summary>
    public bool WriteDifferencingBlock(long block, ReadOnlySpan<byte> data, ReadOnlySpan<byte> sectorBitmap)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, BlockCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(data.Length, BlockSizeBytes);
        if (_parent is null)
        {
            throw new InvalidOperationException("not a differencing VHD");
        }

        if (sectorBitmap.Length != SectorBytes)
        {
            throw new ArgumentException($"sector bitmap must be {SectorBytes} bytes", nameof(sectorBitmap));
        }

        if (!sectorBitmap.ContainsAnyExcept((byte)0))
        {
            return false;
        }

        var full = !sectorBitmap.ContainsAnyExcept((byte)0xFF);
        if (full)
        {
            Place(block, sectorBitmap, data, full: true);
            return true;
        }

        var clean = GC.AllocateUninitializedArray<byte>(data.Length);
        data.CopyTo(clean);
        for (var sector = 0; sector * SectorBytes < clean.Length; sector++)
        {
            if (!VhdBitmap.IsSet(sectorBitmap, sector))
            {
                clean.AsSpan(sector * SectorBytes, Math.Min(SectorBytes, clean.Length - (sector * SectorBytes))).Clear();
            }
        }

        Place(block, sectorBitmap, clean, full: false);
        return true;
    }

    private void Place(long block, ReadOnlySpan<byte> bitmap, ReadOnlySpan<byte> data, bool full)
    {
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
            if (full)
            {
                VhdBitmap.Set(_full, block);
            }

            _nextBitmapSector = AlignBitmapSector(bitmapSector + BitmapSectors + BlockSectors);
            _allocated++;
        }

        var bitmapOffset = bitmapSector * SectorBytes;
        _file.Write(bitmapOffset, bitmap);
        // A short last block leaves its tail unwritten: a hole that reads as zeros; Commit puts the footer after it.
        _file.Write(bitmapOffset + SectorBytes, data);
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
        if (_parent is { } parent)
        {
            var locators = new List<VhdParentLocator>();
            for (var i = 0; i < s_locatorCodes.Length; i++)
            {
                var (code, text) = s_locatorCodes[i];
                var data = VhdParentLocator.EncodeText(code, text(parent.FileName));
                var offset = _locatorOffsetBytes + (i * LocatorSectors * SectorBytes);
                var sector = new byte[LocatorSectors * SectorBytes];
                data.AsSpan(0, Math.Min(data.Length, sector.Length)).CopyTo(sector);
                _file.Write(offset, sector);
                locators.Add(new VhdParentLocator(code, (uint)sector.Length, (uint)Math.Min(data.Length, sector.Length), 0, (ulong)offset));
            }

            while (locators.Count < VhdDynamicHeaderLayout.ParentLocatorCount)
            {
                locators.Add(new VhdParentLocator(VhdParentLocator.CodeNone, 0, 0, 0, 0));
            }

            header = header with
            {
                ParentUuid = parent.Uuid,
                ParentTimestampSeconds = parent.TimestampSeconds,
                ParentUnicodeName = parent.FileName,
                ParentLocators = locators,
            };
        }

        var headerBytes = new byte[VhdDynamicHeaderLayout.Size];
        header.Encode(headerBytes);

        var table = new byte[RoundUp(BlockCount * 4L, SectorBytes)];
        for (var i = 0; i < _bat.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(table.AsSpan(i * 4), _bat[i]);
            if (_bat[i] != VhdBat.Unallocated && VhdBitmap.IsSet(_full, i))
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
        var (cylinders, heads, sectors) = VhdGeometry.FromSize((ulong)VirtualSizeBytes);
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
            DiskType = _parent is null ? VhdDiskType.Dynamic : VhdDiskType.Differencing,
            Uuid = Uuid,
        };
    }

    /// <summary>Locators vhd-util writes for a parent file: MacX "file://./NAME", W2ku and W2ru ".\\NAME" (UTF-16LE).</summary>
    private static readonly (uint Code, Func<string, string> Text)[] s_locatorCodes =
    [
        (VhdParentLocator.CodeMacX, n => "file://./" + n),
        (VhdParentLocator.CodeW2ku, n => ".\\" + n),
        (VhdParentLocator.CodeW2ru, n => ".\\" + n),
    ];

    /// <summary>One sector of locator data each (a file name up to 255 UTF-16 characters fits).</summary>
    private const int LocatorSectors = 1;

    /// <summary>tapdisk puts block data on a 4 KiB boundary: bitmap sector s with (s + 1) % 8 == 0.</summary>
    private static long AlignBitmapSector(long sector) => sector + ((8 - ((sector + 1) % 8)) % 8);

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}

/// <summary>The parent a differencing VHD names: its footer uuid and time stamp, and its file name next to the child.</summary>
/// <param name="Uuid">The parent's footer uuid (the child's header parent uuid).</param>
/// <param name="TimestampSeconds">The parent's footer time stamp (seconds since 2000-01-01 UTC), for header prt_ts.</param>
/// <param name="FileName">The parent's file name in the same directory (locators and parent unicode name).</param>
public sealed record VhdParentLink(Guid Uuid, uint TimestampSeconds, string FileName);
