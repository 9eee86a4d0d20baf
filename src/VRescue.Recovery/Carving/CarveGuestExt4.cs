// SPDX-License-Identifier: MIT
using VRescue.Formats.Ext;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Carving;

/// <summary>
/// A carved VDI's guest ext4 block allocation, read through the extents already placed with confidence (primary
/// superblock, group descriptors, block bitmaps). Tells whether a guest 4 KiB chunk lies in allocated file system
/// blocks, so a partially written VHD block's sector bitmap can be compared with the guest's own allocation: the
/// guest writes where its file system allocated, so a candidate extent whose written chunks fall in free blocks
/// belongs to another VDI (or holds the stale blocks of a deleted file there).
/// </summary>
internal sealed class CarveGuestExt4
{
    private const int MaxGroups = 1 << 20;
    private const int ChunkBytes = 4096;

    /// <summary>Placed extents below this confidence are not read (their bytes might belong to another LV).</summary>
    public const double MinReadConfidence = 0.8;

    private readonly Func<long, Span<byte>, bool> _read;
    private readonly Ext4Superblock _sb;
    private readonly long _groups;
    private readonly Dictionary<long, byte[]?> _bitmaps = [];

    private CarveGuestExt4(Func<long, Span<byte>, bool> read, Ext4Superblock sb, long groups)
    {
        _read = read;
        _sb = sb;
        _groups = groups;
    }

    // Open checked the geometry, so the block size is known and blocks per group is not zero.
    private long BlockSize => _sb.BlockSizeBytes!.Value;

    private long BlocksPerGroup => _sb.BlocksPerGroup;

    private long FirstDataBlock => _sb.FirstDataBlock;

    public Guid FsUuid => _sb.Uuid;

    /// <summary>Opens <paramref name="v"/>'s guest ext4, or null when its primary superblock is not readable through confident extents.</summary>
    public static CarveGuestExt4? Open(IReadOnlyList<CarvedVdi> vdis, CarvedVdi v, IReadOnlyList<IBlockSource> sources, long peStartBytes, long extentSizeBytes)
    {
        bool Read(long guest, Span<byte> buffer) => ReadGuest(vdis, v, sources, peStartBytes, extentSizeBytes, guest, buffer);
        var raw = new byte[Ext4Superblock.SizeBytes];
        if (!Read(Ext4Superblock.OffsetBytes, raw))
        {
            return null;
        }

        var sb = Ext4Superblock.Decode(raw);
        var (perGroup, first, descSize) = (sb.BlocksPerGroup, sb.FirstDataBlock, sb.DescriptorSizeBytes);
        if (sb.Magic != Ext4Superblock.MagicValue || sb.BlockSizeBytes is null || perGroup == 0 || descSize > 1024 || (descSize & (descSize - 1)) != 0
            || sb.BlocksCount <= first || (sb.FeatureIncompat & Ext4Superblock.IncompatMetaBg) != 0)
        {
            return null;
        }

        var groups = (long)((sb.BlocksCount - first + perGroup - 1) / perGroup);
        return groups > MaxGroups ? null : new CarveGuestExt4(Read, sb, groups);
    }

    /// <summary>True/false: the 4 KiB guest chunk at <paramref name="guestOffset"/> holds an allocated block; null when unknown.</summary>
    public bool? ChunkAllocated(long guestOffset)
    {
        var firstBlock = guestOffset / BlockSize;
        var lastBlock = (guestOffset + ChunkBytes - 1) / BlockSize;
        var known = true;
        for (var b = firstBlock; b <= lastBlock; b++)
        {
            if (b < FirstDataBlock)
            {
                return true;
            }

            var group = (b - FirstDataBlock) / BlocksPerGroup;
            if (group >= _groups || Bitmap(group) is not { } bitmap)
            {
                known = false;
                continue;
            }

            var bit = (b - FirstDataBlock) % BlocksPerGroup;
            if (bit / 8 < bitmap.Length && (bitmap[bit / 8] & (1 << (int)(bit % 8))) != 0)
            {
                return true;
            }
        }

        return known ? false : null;
    }

    private byte[]? Bitmap(long group)
    {
        if (_bitmaps.TryGetValue(group, out var cached))
        {
            return cached;
        }

        byte[]? bitmap = null;
        var raw = new byte[_sb.DescriptorSizeBytes];
        if (Ext4GroupDescriptor.OffsetInFilesystemBytes(_sb, group) is { } descAt && _read(descAt, raw)
            && Ext4GroupDescriptor.Decode(raw) is { } desc && !desc.Flags.HasFlag(Ext4GroupFlags.BlockUninit))
        {
            var at = (long)Math.Min(desc.BlockBitmapBlock, long.MaxValue);
            var buffer = new byte[(int)Math.Min(BlockSize, (BlocksPerGroup + 7) / 8)];
            if (at > 0 && at < (long)_sb.BlocksCount && _read(checked(at * BlockSize), buffer))
            {
                bitmap = buffer;
            }
        }

        _bitmaps[group] = bitmap;
        return bitmap;
    }

    /// <summary>
    /// Reads guest bytes of <paramref name="v"/> (its own blocks, else its parents', at most 32 hops) from extents
    /// placed with confidence; false when any byte is in an unplaced, unsure or unallocated place.
    /// </summary>
    internal static bool ReadGuest(IReadOnlyList<CarvedVdi> vdis, CarvedVdi v, IReadOnlyList<IBlockSource> sources, long peStartBytes, long extent,
        long guest, Span<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var node = v;
            var hops = 0;
            while (true)
            {
                var blockBytes = (long)node.Header.BlockSizeBytes;
                var block = guest / blockBytes;
                if (block < node.Bat.Length && node.Bat[block] != VhdBat.Unallocated)
                {
                    break;
                }

                if (node.ParentId is not { } pid || ++hops > 32)
                {
                    return false;
                }

                node = vdis[pid];
            }

            var bs = (long)node.Header.BlockSizeBytes;
            var lv = (node.Bat[guest / bs] * 512L) + (node.Header.BitmapSizeSectors * 512) + (guest % bs);
            var le = lv / extent;
            if (le >= node.Extents.Length || node.Extents[le] is not { Filler: false, Ambiguous: false } e || e.Confidence < MinReadConfidence)
            {
                return false;
            }

            var n = (int)Math.Min(buffer.Length, Math.Min(bs - (guest % bs), extent - (lv % extent)));
            var at = checked(peStartBytes + (e.Pe * extent) + (lv % extent));
            if (sources[e.Source].ReadAt(at, buffer[..n]) < n)
            {
                return false;
            }

            buffer = buffer[n..];
            guest += n;
        }

        return true;
    }
}
