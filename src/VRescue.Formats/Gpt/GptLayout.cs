// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Gpt;

/// <summary>Byte map of the GPT header. UEFI spec 2.10 section 5.3.2, table 5-5 (all fields little-endian).</summary>
public static class GptHeaderLayout
{
    /// <summary>Logical block size VRescue assumes for GPT LBAs (512-byte sector disks, as XenServer SRs use).</summary>
    public const int LogicalBlockBytes = 512;

    public const int SignatureOffset = 0;
    public const int SignatureLength = 8;
    public const int RevisionOffset = 8;
    public const int HeaderSizeOffset = 12;
    public const int HeaderCrc32Offset = 16;
    public const int HeaderCrc32Length = 4;
    public const int ReservedOffset = 20;
    public const int MyLbaOffset = 24;
    public const int AlternateLbaOffset = 32;
    public const int FirstUsableLbaOffset = 40;
    public const int LastUsableLbaOffset = 48;
    public const int DiskGuidOffset = 56;
    public const int GuidLength = 16;
    public const int PartitionEntryLbaOffset = 72;
    public const int NumberOfPartitionEntriesOffset = 80;
    public const int SizeOfPartitionEntryOffset = 84;
    public const int PartitionEntryArrayCrc32Offset = 88;

    /// <summary>Bytes defined by the spec; HeaderSize must be at least this and at most the block size.</summary>
    public const int MinHeaderSize = 92;
}

/// <summary>Byte map of one GPT partition entry. UEFI spec 2.10 section 5.3.3, table 5-6.</summary>
public static class GptEntryLayout
{
    public const int PartitionTypeGuidOffset = 0;
    public const int UniquePartitionGuidOffset = 16;
    public const int StartingLbaOffset = 32;
    public const int EndingLbaOffset = 40;
    public const int AttributesOffset = 48;
    public const int PartitionNameOffset = 56;
    public const int PartitionNameLength = 72;

    /// <summary>UTF-16 code units that fit in the name field.</summary>
    public const int PartitionNameMaxChars = PartitionNameLength / 2;

    /// <summary>Minimum entry size; the spec requires 128 * 2^n.</summary>
    public const int MinEntrySize = 128;
}
