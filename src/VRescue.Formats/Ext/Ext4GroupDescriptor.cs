// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace VRescue.Formats.Ext;

/// <summary>bg_flags (fs/ext4/ext4.h EXT4_BG_*).</summary>
[Flags]
public enum Ext4GroupFlags : ushort
{
    None = 0,
    InodeUninit = 0x1,
    BlockUninit = 0x2,
    InodeTableZeroed = 0x4,
}

/// <summary>
/// One ext4 block group descriptor (Documentation/filesystems/ext4/group_descr.rst; struct ext4_group_desc): 32 bytes,
/// or s_desc_size (64) with the 64bit feature, whose second half holds the high 32 bits of the block numbers. The
/// table starts in the block after the one holding the primary superblock (without meta_bg).
/// </summary>
public sealed record Ext4GroupDescriptor
{
    // Byte map (group_descr.rst table).
    private const int BlockBitmapLoOffset = 0x0;
    private const int InodeBitmapLoOffset = 0x4;
    private const int InodeTableLoOffset = 0x8;
    private const int FlagsOffset = 0x12;
    private const int ChecksumOffset = 0x1E;
    private const int BlockBitmapHiOffset = 0x20;
    private const int InodeBitmapHiOffset = 0x24;
    private const int InodeTableHiOffset = 0x28;

    /// <summary>Descriptors at least this long carry the _hi halves (EXT4_MIN_DESC_SIZE_64BIT).</summary>
    public const int MinSize64BitBytes = 64;

    /// <summary>Descriptor size without the 64bit feature (EXT4_MIN_DESC_SIZE).</summary>
    public const int MinSizeBytes = 32;

    public ulong BlockBitmapBlock { get; init; }
    public ulong InodeBitmapBlock { get; init; }
    public ulong InodeTableBlock { get; init; }
    public Ext4GroupFlags Flags { get; init; }

    /// <summary>bg_checksum as stored (crc16 with uninit_bg, low 16 bits of a crc32c with metadata_csum).</summary>
    public ushort StoredChecksum { get; init; }

    /// <summary>
    /// Byte offset of group <paramref name="group"/>'s descriptor inside the filesystem: (s_first_data_block + 1) x block
    /// size + group x descriptor size. Null with meta_bg (descriptors then sit in each meta group) or an unusable block size.
    /// </summary>
    public static long? OffsetInFilesystemBytes(Ext4Superblock sb, long group) =>
        (sb.FeatureIncompat & Ext4Superblock.IncompatMetaBg) != 0 || sb.BlockSizeBytes is not { } bs
            ? null
            : ((sb.FirstDataBlock + 1L) * bs) + (group * sb.DescriptorSizeBytes);

    /// <summary>Decodes one descriptor; <paramref name="descriptor"/> is <see cref="Ext4Superblock.DescriptorSizeBytes"/> long.</summary>
    public static Ext4GroupDescriptor Decode(ReadOnlySpan<byte> descriptor)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(descriptor.Length, MinSizeBytes, nameof(descriptor));
        return new Ext4GroupDescriptor
        {
            BlockBitmapBlock = Block(descriptor, BlockBitmapLoOffset, BlockBitmapHiOffset),
            InodeBitmapBlock = Block(descriptor, InodeBitmapLoOffset, InodeBitmapHiOffset),
            InodeTableBlock = Block(descriptor, InodeTableLoOffset, InodeTableHiOffset),
            Flags = (Ext4GroupFlags)BinaryPrimitives.ReadUInt16LittleEndian(descriptor[FlagsOffset..]),
            StoredChecksum = BinaryPrimitives.ReadUInt16LittleEndian(descriptor[ChecksumOffset..]),
        };
    }

    /// <summary>
    /// The metadata_csum checksum of a descriptor (fs/ext4/super.c ext4_group_desc_csum): crc32c(seed, le32 group,
    /// the descriptor with bg_checksum taken as zero) &amp; 0xFFFF, seed from <see cref="ChecksumSeed"/>.
    /// </summary>
    public static ushort ComputeMetadataChecksum(uint seed, uint group, ReadOnlySpan<byte> descriptor)
    {
        Span<byte> g = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(g, group);
        var crc = Ext4Crc32C.Append(seed, g);
        crc = Ext4Crc32C.Append(crc, descriptor[..ChecksumOffset]);
        crc = Ext4Crc32C.Append(crc, [0, 0]);
        crc = Ext4Crc32C.Append(crc, descriptor[(ChecksumOffset + 2)..]);
        return (ushort)(crc & 0xFFFF);
    }

    /// <summary>s_csum_seed: crc32c(~0, s_uuid), or s_checksum_seed (0x270) with metadata_csum_seed (fs/ext4/super.c).</summary>
    public static uint ChecksumSeed(Ext4Superblock sb) =>
        (sb.FeatureIncompat & Ext4Superblock.IncompatCsumSeed) != 0
            ? BinaryPrimitives.ReadUInt32LittleEndian(sb.Raw.AsSpan(Ext4Superblock.ChecksumSeedOffset))
            : Ext4Crc32C.Append(~0u, sb.Raw.AsSpan(Ext4Superblock.UuidOffset, 16));

    private static ulong Block(ReadOnlySpan<byte> d, int lo, int hi) => BinaryPrimitives.ReadUInt32LittleEndian(d[lo..])
        | (d.Length >= MinSize64BitBytes ? (ulong)BinaryPrimitives.ReadUInt32LittleEndian(d[hi..]) << 32 : 0);
}
