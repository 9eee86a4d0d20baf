// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace VRescue.Formats.Mbr;

/// <summary>
/// One 16-byte MBR or EBR partition record as stored (UEFI spec 2.10 table 5-2). LBAs are relative to the
/// start of the disk for the MBR, and relative to the EBR or extended partition for EBR entries.
/// </summary>
/// <param name="Index">Slot number 1..4 within its sector.</param>
/// <param name="Status">Boot indicator: 0x80 active, 0x00 inactive; anything else is invalid but kept.</param>
/// <param name="Type">OS type byte (see <see cref="MbrPartitionTypes"/>).</param>
/// <param name="FirstLba">Starting LBA as stored.</param>
/// <param name="SizeSectors">Size in 512-byte sectors as stored.</param>
/// <param name="StartingChs">Raw 24-bit CHS address of the first sector (kept for rewrites, not interpreted).</param>
/// <param name="EndingChs">Raw 24-bit CHS address of the last sector.</param>
public sealed record MbrPartitionEntry(
    int Index,
    byte Status,
    byte Type,
    uint FirstLba,
    uint SizeSectors,
    int StartingChs = MbrPartitionEntry.ChsUnused,
    int EndingChs = MbrPartitionEntry.ChsUnused)
{
    /// <summary>CHS value meaning "use the LBA fields" (0xFFFFFF, as sgdisk and fdisk write for large disks).</summary>
    public const int ChsUnused = 0xFFFFFF;

    /// <summary>True when the slot describes no sectors; Linux and libfdisk skip such slots whatever the type.</summary>
    public bool IsEmpty => SizeSectors == 0;

    /// <summary>True for 0x05, 0x0F and 0x85 container entries.</summary>
    public bool IsExtended => MbrPartitionTypes.IsExtended(Type);

    /// <summary>First sector after the entry, relative like <see cref="FirstLba"/>.</summary>
    public long EndLbaExclusive => (long)FirstLba + SizeSectors;

    /// <summary><see cref="FirstLba"/> in bytes, relative like <see cref="FirstLba"/>.</summary>
    public long StartBytes => (long)FirstLba * MbrLayout.SectorBytes;

    /// <summary><see cref="SizeSectors"/> in bytes.</summary>
    public long SizeBytes => (long)SizeSectors * MbrLayout.SectorBytes;

    /// <summary>Decodes the 16-byte record at <paramref name="entry"/>.</summary>
    public static MbrPartitionEntry Decode(int index, ReadOnlySpan<byte> entry)
    {
        if (entry.Length < MbrLayout.EntryLength)
        {
            throw new ArgumentException($"an MBR entry is {MbrLayout.EntryLength} bytes, got {entry.Length}", nameof(entry));
        }

        return new MbrPartitionEntry(
            index,
            entry[MbrEntryLayout.BootIndicatorOffset],
            entry[MbrEntryLayout.OsTypeOffset],
            BinaryPrimitives.ReadUInt32LittleEndian(entry[MbrEntryLayout.StartingLbaOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(entry[MbrEntryLayout.SizeInLbaOffset..]),
            ReadChs(entry[MbrEntryLayout.StartingChsOffset..]),
            ReadChs(entry[MbrEntryLayout.EndingChsOffset..]));
    }

    /// <summary>Writes the 16-byte record into <paramref name="entry"/>.</summary>
    public void Encode(Span<byte> entry)
    {
        if (entry.Length < MbrLayout.EntryLength)
        {
            throw new ArgumentException($"an MBR entry is {MbrLayout.EntryLength} bytes, got {entry.Length}", nameof(entry));
        }

        entry[MbrEntryLayout.BootIndicatorOffset] = Status;
        WriteChs(entry[MbrEntryLayout.StartingChsOffset..], StartingChs);
        entry[MbrEntryLayout.OsTypeOffset] = Type;
        WriteChs(entry[MbrEntryLayout.EndingChsOffset..], EndingChs);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[MbrEntryLayout.StartingLbaOffset..], FirstLba);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[MbrEntryLayout.SizeInLbaOffset..], SizeSectors);
    }

    private static int ReadChs(ReadOnlySpan<byte> b) => b[0] | b[1] << 8 | b[2] << 16;

    private static void WriteChs(Span<byte> b, int chs)
    {
        b[0] = (byte)(chs & 0xFF);
        b[1] = (byte)((chs >> 8) & 0xFF);
        b[2] = (byte)((chs >> 16) & 0xFF);
    }
}
