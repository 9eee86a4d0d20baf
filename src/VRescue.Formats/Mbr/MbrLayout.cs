// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Mbr;

/// <summary>Byte map of the MBR sector (also used by each EBR). UEFI spec 2.10 section 5.2.1, table 5-1.</summary>
public static class MbrLayout
{
    /// <summary>Sector size assumed for LBAs in MBR and EBR entries.</summary>
    public const int SectorBytes = 512;

    public const int BootCodeOffset = 0;
    public const int BootCodeLength = 440;
    public const int DiskSignatureOffset = 440;
    public const int DiskSignatureLength = 4;
    public const int PartitionTableOffset = 446;
    public const int EntryLength = 16;
    public const int EntryCount = 4;
    public const int BootSignatureOffset = 510;
    public const int BootSignatureLength = 2;

    /// <summary>0x55 0xAA at offset 510, read as a little-endian UInt16.</summary>
    public const ushort BootSignatureValue = 0xAA55;

    /// <summary>Byte offset of entry <paramref name="index"/> (1..4) in the sector.</summary>
    public static int EntryOffset(int index) => PartitionTableOffset + (index - 1) * EntryLength;
}

/// <summary>Byte map of one 16-byte MBR partition record. UEFI spec 2.10 table 5-2.</summary>
public static class MbrEntryLayout
{
    public const int BootIndicatorOffset = 0;
    public const int StartingChsOffset = 1;
    public const int ChsLength = 3;
    public const int OsTypeOffset = 4;
    public const int EndingChsOffset = 5;
    public const int StartingLbaOffset = 8;
    public const int SizeInLbaOffset = 12;
}
