// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Ext;

/// <summary>Which ext flavour a superblock describes, decided from feature bits the way libblkid does (superblocks/ext.c).</summary>
public enum ExtKind
{
    Ext2,
    Ext3,
    Ext4,

    /// <summary>External journal device (incompat journal_dev), not a filesystem.</summary>
    JournalDevice,
}

/// <summary>s_errors: what the kernel does when it detects an error.</summary>
public enum Ext4ErrorBehaviour : ushort
{
    Continue = 1,
    RemountReadOnly = 2,
    Panic = 3,
}

/// <summary>s_state bits (EXT4_VALID_FS, EXT4_ERROR_FS, EXT4_ORPHAN_FS).</summary>
[Flags]
public enum Ext4State : ushort
{
    None = 0,
    CleanlyUnmounted = 0x1,
    ErrorsDetected = 0x2,
    OrphansBeingRecovered = 0x4,
}

/// <summary>
/// The ext2/3/4 superblock: 1024 bytes at byte 1024 of the filesystem, little-endian (Linux
/// Documentation/filesystems/ext4/super.rst; fs/ext4/ext4.h struct ext4_super_block). Only the fields a recovery
/// tool and the guest watchdog need; <see cref="Raw"/> keeps all bytes.
/// </summary>
public sealed record Ext4Superblock
{
    public const int OffsetBytes = 1024;
    public const int SizeBytes = 1024;
    public const ushort MagicValue = 0xEF53;

    // Byte map (super.rst, "The Super Block" table).
    private const int InodesCountOffset = 0x0;
    private const int BlocksCountLoOffset = 0x4;
    private const int FirstDataBlockOffset = 0x14;
    private const int LogBlockSizeOffset = 0x18;
    private const int BlocksPerGroupOffset = 0x20;
    private const int InodesPerGroupOffset = 0x28;
    private const int MtimeOffset = 0x2C;
    private const int WtimeOffset = 0x30;
    public const int MagicOffset = 0x38;
    private const int StateOffset = 0x3A;
    private const int ErrorsOffset = 0x3C;
    private const int RevLevelOffset = 0x4C;
    private const int InodeSizeOffset = 0x58;
    private const int BlockGroupNumberOffset = 0x5A;
    private const int DescSizeOffset = 0xFE;
    private const int FeatureCompatOffset = 0x5C;
    private const int FeatureIncompatOffset = 0x60;
    private const int FeatureRoCompatOffset = 0x64;
    public const int UuidOffset = 0x68;
    private const int VolumeNameOffset = 0x78;
    private const int VolumeNameLength = 16;
    private const int LastMountedOffset = 0x88;
    private const int LastMountedLength = 64;
    private const int MkfsTimeOffset = 0x108;
    private const int BlocksCountHiOffset = 0x150;
    private const int ChecksumTypeOffset = 0x175;
    private const int ErrorCountOffset = 0x194;
    private const int FirstErrorTimeOffset = 0x198;
    private const int FirstErrorInodeOffset = 0x19C;
    private const int FirstErrorBlockOffset = 0x1A0;
    private const int FirstErrorFuncOffset = 0x1A8;
    private const int ErrorFuncLength = 32;
    private const int FirstErrorLineOffset = 0x1C8;
    private const int LastErrorTimeOffset = 0x1CC;
    private const int LastErrorInodeOffset = 0x1D0;
    private const int LastErrorLineOffset = 0x1D4;
    private const int LastErrorBlockOffset = 0x1D8;
    private const int LastErrorFuncOffset = 0x1E0;
    private const int WtimeHiOffset = 0x274;
    private const int MtimeHiOffset = 0x275;
    private const int MkfsTimeHiOffset = 0x276;
    private const int FirstErrorTimeHiOffset = 0x278;
    private const int LastErrorTimeHiOffset = 0x279;
    private const int FirstErrorCodeOffset = 0x27A;
    private const int LastErrorCodeOffset = 0x27B;
    public const int ChecksumSeedOffset = 0x270;
    private const int ChecksumOffset = 0x3FC;

    // 1024 << 6 = 64 KiB, the largest block size the kernel mounts (EXT4_MAX_BLOCK_LOG_SIZE 16).
    private const uint MaxLogBlockSize = 6;

    public const uint CompatHasJournal = 0x4;
    public const uint IncompatFiletype = 0x2;
    public const uint IncompatRecover = 0x4;
    public const uint IncompatJournalDev = 0x8;
    public const uint IncompatMetaBg = 0x10;
    public const uint Incompat64Bit = 0x80;
    public const uint IncompatCsumSeed = 0x2000;
    public const uint RoCompatSparseSuper = 0x1;
    public const uint RoCompatLargeFile = 0x2;
    public const uint RoCompatBtreeDir = 0x4;
    public const uint RoCompatMetadataCsum = 0x400;

    // libblkid superblocks/ext.c: what ext2/ext3 drivers support; anything more makes it ext4.
    private const uint Ext3IncompatSupported = IncompatFiletype | IncompatRecover | IncompatMetaBg;
    private const uint Ext2IncompatSupported = IncompatFiletype | IncompatMetaBg;
    private const uint Ext23RoCompatSupported = RoCompatSparseSuper | RoCompatLargeFile | RoCompatBtreeDir;

    /// <summary>All 1024 superblock bytes as read (checksums are computed over these).</summary>
    public required byte[] Raw { get; init; }

    public ushort Magic { get; init; }
    public uint InodesCount { get; init; }

    /// <summary>s_blocks_count_lo, plus s_blocks_count_hi when the 64bit feature is set.</summary>
    public ulong BlocksCount { get; init; }

    public uint LogBlockSize { get; init; }

    /// <summary>1024 &lt;&lt; s_log_block_size, or null when the exponent is out of range.</summary>
    public int? BlockSizeBytes => LogBlockSize <= MaxLogBlockSize ? 1024 << (int)LogBlockSize : null;

    /// <summary>s_first_data_block: 1 for 1 KiB blocks (block 0 holds the boot sector and superblock), else 0.</summary>
    public uint FirstDataBlock { get; init; }

    /// <summary>s_blocks_per_group.</summary>
    public uint BlocksPerGroup { get; init; }

    /// <summary>s_inodes_per_group.</summary>
    public uint InodesPerGroup { get; init; }

    /// <summary>s_inode_size (meaningful from revision 1; revision 0 inodes are 128 bytes).</summary>
    public ushort InodeSizeRaw { get; init; }

    /// <summary>s_desc_size: group descriptor size when the 64bit feature is set (else descriptors are 32 bytes).</summary>
    public ushort DescSizeRaw { get; init; }

    /// <summary>Inode size in bytes: s_inode_size from revision 1, 128 before.</summary>
    public int InodeSizeBytes => RevLevel >= 1 ? InodeSizeRaw : 128;

    /// <summary>Group descriptor size in bytes: s_desc_size (at least 32) with the 64bit feature, else 32.</summary>
    public int DescriptorSizeBytes => (FeatureIncompat & Incompat64Bit) != 0 ? Math.Max(32, (int)DescSizeRaw) : 32;

    /// <summary>s_block_group_nr: the group whose first block holds this copy (0 in the primary).</summary>
    public ushort BlockGroupNumber { get; init; }

    /// <summary>
    /// Where this copy sits inside the filesystem: byte 1024 for the primary, else the first block of group
    /// <see cref="BlockGroupNumber"/> ((group x blocks per group + first data block) x block size, super.rst
    /// "sparse_super"); null when the block size is out of range.
    /// </summary>
    public long? CopyOffsetInFilesystemBytes => BlockGroupNumber == 0 ? OffsetBytes
        : BlockSizeBytes is { } bs ? (((long)BlockGroupNumber * BlocksPerGroup) + FirstDataBlock) * bs : null;

    public Ext4State State { get; init; }
    public ushort ErrorsRaw { get; init; }
    public Ext4ErrorBehaviour? Errors => ErrorsRaw is >= 1 and <= 3 ? (Ext4ErrorBehaviour)ErrorsRaw : null;
    public uint RevLevel { get; init; }
    public uint FeatureCompat { get; init; }
    public uint FeatureIncompat { get; init; }
    public uint FeatureRoCompat { get; init; }
    public Guid Uuid { get; init; }
    public string VolumeName { get; init; } = "";
    public string LastMountedOn { get; init; } = "";
    public DateTimeOffset? MountTime { get; init; }
    public DateTimeOffset? WriteTime { get; init; }
    public DateTimeOffset? CreatedTime { get; init; }

    public uint ErrorCount { get; init; }
    public DateTimeOffset? FirstErrorTime { get; init; }
    public string FirstErrorFunction { get; init; } = "";
    public uint FirstErrorLine { get; init; }
    public uint FirstErrorInode { get; init; }
    public ulong FirstErrorBlock { get; init; }
    public byte FirstErrorCode { get; init; }
    public DateTimeOffset? LastErrorTime { get; init; }
    public string LastErrorFunction { get; init; } = "";
    public uint LastErrorLine { get; init; }
    public uint LastErrorInode { get; init; }
    public ulong LastErrorBlock { get; init; }
    public byte LastErrorCode { get; init; }

    public byte ChecksumType { get; init; }
    public uint StoredChecksum { get; init; }

    /// <summary>crc32c over bytes 0..0x3FB (kernel ext4_superblock_csum: seed ~0, no final inversion).</summary>
    public uint ComputedChecksum => ComputeChecksum(Raw);

    public bool HasMetadataChecksum => (FeatureRoCompat & RoCompatMetadataCsum) != 0;

    /// <summary>ext2, ext3 or ext4 as libblkid would report it.</summary>
    public ExtKind Kind
    {
        get
        {
            if ((FeatureIncompat & IncompatJournalDev) != 0)
            {
                return ExtKind.JournalDevice;
            }

            var beyondExt3 = (FeatureRoCompat & ~Ext23RoCompatSupported) != 0 || (FeatureIncompat & ~Ext3IncompatSupported) != 0;
            if (beyondExt3)
            {
                return ExtKind.Ext4;
            }

            if ((FeatureCompat & CompatHasJournal) != 0)
            {
                return ExtKind.Ext3;
            }

            return (FeatureIncompat & ~Ext2IncompatSupported) != 0 ? ExtKind.Ext4 : ExtKind.Ext2;
        }
    }

    /// <summary>Feature names as e2fsprogs prints them (lib/e2p/feature.c), compat then incompat then ro_compat.</summary>
    public IReadOnlyList<string> FeatureNames
    {
        get
        {
            var names = new List<string>();
            AddNames(names, FeatureCompat, s_compatNames, 'C');
            AddNames(names, FeatureIncompat, s_incompatNames, 'I');
            AddNames(names, FeatureRoCompat, s_roCompatNames, 'R');
            return names;
        }
    }

    /// <summary>
    /// Quick test on the first 2048 bytes of a device or image: ext magic at 1024 + 0x38 and sane counts.
    /// Used to say "this is an ext filesystem, not an SR".
    /// </summary>
    public static bool LooksLikeExt(ReadOnlySpan<byte> first2048)
    {
        if (first2048.Length < OffsetBytes + SizeBytes)
        {
            return false;
        }

        var sb = first2048.Slice(OffsetBytes, SizeBytes);
        return BinaryPrimitives.ReadUInt16LittleEndian(sb[MagicOffset..]) == MagicValue
            && BinaryPrimitives.ReadUInt32LittleEndian(sb[LogBlockSizeOffset..]) <= MaxLogBlockSize
            && BinaryPrimitives.ReadUInt32LittleEndian(sb[InodesCountOffset..]) != 0
            && BinaryPrimitives.ReadUInt32LittleEndian(sb[BlocksCountLoOffset..]) != 0;
    }

    /// <summary>Decodes the 1024 superblock bytes (the caller reads them at <see cref="OffsetBytes"/>). Keeps invalid values.</summary>
    public static Ext4Superblock Decode(ReadOnlySpan<byte> superblock)
    {
        if (superblock.Length < SizeBytes)
        {
            throw new CorruptDataException("ext", "superblock", "EXT_TRUNCATED",
                $"ext superblock needs {SizeBytes} bytes; {superblock.Length} available", OffsetBytes + superblock.Length,
                null, superblock.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), SizeBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var s = superblock[..SizeBytes];
        var incompat = U32(s, FeatureIncompatOffset);
        var blocks = (ulong)U32(s, BlocksCountLoOffset);
        if ((incompat & Incompat64Bit) != 0)
        {
            blocks |= (ulong)U32(s, BlocksCountHiOffset) << 32;
        }

        return new Ext4Superblock
        {
            Raw = s.ToArray(),
            Magic = BinaryPrimitives.ReadUInt16LittleEndian(s[MagicOffset..]),
            InodesCount = U32(s, InodesCountOffset),
            BlocksCount = blocks,
            LogBlockSize = U32(s, LogBlockSizeOffset),
            FirstDataBlock = U32(s, FirstDataBlockOffset),
            BlocksPerGroup = U32(s, BlocksPerGroupOffset),
            InodesPerGroup = U32(s, InodesPerGroupOffset),
            InodeSizeRaw = BinaryPrimitives.ReadUInt16LittleEndian(s[InodeSizeOffset..]),
            DescSizeRaw = BinaryPrimitives.ReadUInt16LittleEndian(s[DescSizeOffset..]),
            BlockGroupNumber = BinaryPrimitives.ReadUInt16LittleEndian(s[BlockGroupNumberOffset..]),
            State = (Ext4State)BinaryPrimitives.ReadUInt16LittleEndian(s[StateOffset..]),
            ErrorsRaw = BinaryPrimitives.ReadUInt16LittleEndian(s[ErrorsOffset..]),
            RevLevel = U32(s, RevLevelOffset),
            FeatureCompat = U32(s, FeatureCompatOffset),
            FeatureIncompat = incompat,
            FeatureRoCompat = U32(s, FeatureRoCompatOffset),
            Uuid = new Guid(s.Slice(UuidOffset, 16), bigEndian: true),
            VolumeName = CString(s.Slice(VolumeNameOffset, VolumeNameLength)),
            LastMountedOn = CString(s.Slice(LastMountedOffset, LastMountedLength)),
            MountTime = Time(s, MtimeOffset, MtimeHiOffset),
            WriteTime = Time(s, WtimeOffset, WtimeHiOffset),
            CreatedTime = Time(s, MkfsTimeOffset, MkfsTimeHiOffset),
            ErrorCount = U32(s, ErrorCountOffset),
            FirstErrorTime = Time(s, FirstErrorTimeOffset, FirstErrorTimeHiOffset),
            FirstErrorFunction = CString(s.Slice(FirstErrorFuncOffset, ErrorFuncLength)),
            FirstErrorLine = U32(s, FirstErrorLineOffset),
            FirstErrorInode = U32(s, FirstErrorInodeOffset),
            FirstErrorBlock = BinaryPrimitives.ReadUInt64LittleEndian(s[FirstErrorBlockOffset..]),
            FirstErrorCode = s[FirstErrorCodeOffset],
            LastErrorTime = Time(s, LastErrorTimeOffset, LastErrorTimeHiOffset),
            LastErrorFunction = CString(s.Slice(LastErrorFuncOffset, ErrorFuncLength)),
            LastErrorLine = U32(s, LastErrorLineOffset),
            LastErrorInode = U32(s, LastErrorInodeOffset),
            LastErrorBlock = BinaryPrimitives.ReadUInt64LittleEndian(s[LastErrorBlockOffset..]),
            LastErrorCode = s[LastErrorCodeOffset],
            ChecksumType = s[ChecksumTypeOffset],
            StoredChecksum = U32(s, ChecksumOffset),
        };
    }

    /// <summary><see cref="Decode"/> then throw <see cref="CorruptDataException"/> on the first error finding.</summary>
    public static Ext4Superblock Parse(ReadOnlySpan<byte> superblock)
    {
        var sb = Decode(superblock);
        CorruptDataException.ThrowIfErrors("ext", "superblock", sb.Validate());
        return sb;
    }

    /// <summary>
    /// Structure checks (magic, block size, checksum when metadata_csum) as errors; recorded filesystem errors and an
    /// unclean state as warnings/info. Offsets are absolute from the start of the filesystem.
    /// </summary>
    public IReadOnlyList<Finding> Validate()
    {
        var f = new List<Finding>();
        if (Magic != MagicValue)
        {
            f.Add(new("EXT_NO_MAGIC", Severity.Error, "No ext2/3/4 magic 0xEF53 in the superblock", OffsetBytes + MagicOffset,
                "s_magic", Hex4(Magic), Hex4(MagicValue)));
            return f;
        }

        if (BlockSizeBytes is null)
        {
            f.Add(new("EXT_BAD_BLOCK_SIZE", Severity.Error, $"s_log_block_size {LogBlockSize} gives a block size over 64 KiB",
                OffsetBytes + LogBlockSizeOffset, "s_log_block_size", LogBlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture), "0..6"));
        }

        if (HasMetadataChecksum && StoredChecksum != ComputedChecksum)
        {
            f.Add(new("EXT_BAD_CHECKSUM", Severity.Error, "Superblock crc32c does not match its contents (metadata_csum)",
                OffsetBytes + ChecksumOffset, "s_checksum", Hex.U32(StoredChecksum), Hex.U32(ComputedChecksum)));
        }

        if (Errors is null)
        {
            f.Add(new("EXT_UNKNOWN_ERRORS_BEHAVIOUR", Severity.Warning, $"s_errors {ErrorsRaw} is not 1 (continue), 2 (remount-ro) or 3 (panic)",
                OffsetBytes + ErrorsOffset, "s_errors", ErrorsRaw.ToString(System.Globalization.CultureInfo.InvariantCulture), "1..3"));
        }

        if ((State & Ext4State.ErrorsDetected) != 0 || ErrorCount != 0)
        {
            f.Add(new("EXT_ERRORS_RECORDED", Severity.Warning,
                $"Filesystem has recorded errors (count {ErrorCount}, first in {Describe(FirstErrorFunction)}:{FirstErrorLine}, last in {Describe(LastErrorFunction)}:{LastErrorLine}); run e2fsck",
                OffsetBytes + ErrorCountOffset, "s_error_count", ErrorCount.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        if ((State & Ext4State.CleanlyUnmounted) == 0)
        {
            f.Add(new("EXT_NOT_CLEAN", Severity.Info, "Filesystem is mounted or was not cleanly unmounted", OffsetBytes + StateOffset,
                "s_state", Hex4((ushort)State)));
        }

        return f;
    }

    /// <summary>crc32c of superblock bytes 0..0x3FB with seed ~0 and no final inversion (fs/ext4/super.c ext4_superblock_csum).</summary>
    public static uint ComputeChecksum(ReadOnlySpan<byte> superblock) => Ext4Crc32C.Append(~0u, superblock[..ChecksumOffset]);

    private static readonly string?[] s_compatNames =
        ["dir_prealloc", "imagic_inodes", "has_journal", "ext_attr", "resize_inode", "dir_index", "lazy_bg", null,
         "snapshot_bitmap", "sparse_super2", "fast_commit", "stable_inodes", "orphan_file"];

    private static readonly string?[] s_incompatNames =
        ["compression", "filetype", "needs_recovery", "journal_dev", "meta_bg", null, "extent", "64bit", "mmp", "flex_bg",
         "ea_inode", null, "dirdata", "metadata_csum_seed", "large_dir", "inline_data", "encrypt", "casefold"];

    private static readonly string?[] s_roCompatNames =
        ["sparse_super", "large_file", null, "huge_file", "uninit_bg", "dir_nlink", "extra_isize", null, "quota", "bigalloc",
         "metadata_csum", "replica", "read-only", "project", "shared_blocks", "verity", "orphan_present"];

    private static void AddNames(List<string> names, uint bits, string?[] table, char kind)
    {
        for (var bit = 0; bit < 32; bit++)
        {
            if ((bits & (1u << bit)) != 0)
            {
                names.Add(bit < table.Length && table[bit] is { } n ? n : $"FEATURE_{kind}{bit}");
            }
        }
    }

    private static uint U32(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]);

    // Seconds since the epoch: 32 low bits plus an 8-bit high byte (ext4 "_hi" fields, ext4_get_tstamp).
    // Zero means never; values past year 9999 (only from garbage high bytes) are reported as absent.
    private static DateTimeOffset? Time(ReadOnlySpan<byte> s, int lowOffset, int highOffset)
    {
        var seconds = (long)U32(s, lowOffset) | (long)s[highOffset] << 32;
        return seconds == 0 || seconds > s_maxUnixSeconds ? null : DateTimeOffset.FromUnixTimeSeconds(seconds);
    }

    private static readonly long s_maxUnixSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    private static string CString(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    private static string Describe(string function) => function.Length == 0 ? "?" : function;

    private static string Hex4(ushort value) => $"0x{value:X4}";
}
