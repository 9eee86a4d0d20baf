// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using L = VRescue.Formats.Gpt.GptHeaderLayout;

namespace VRescue.Formats.Gpt;

/// <summary>Where a header's partition entry array lies, bounded to <see cref="GptHeader.MaxEntryArrayBytes"/>.</summary>
/// <param name="OffsetBytes">Absolute byte offset of the array on the disk.</param>
/// <param name="LengthBytes">NumberOfPartitionEntries * SizeOfPartitionEntry.</param>
public readonly record struct GptEntriesRange(long OffsetBytes, int LengthBytes);

/// <summary>
/// A GPT header (UEFI spec 2.10 section 5.3.2, table 5-5). <see cref="Decode"/> keeps every stored value and
/// the raw bytes; the header CRC is computed over those raw bytes, never over a re-encoding.
/// </summary>
public sealed record GptHeader
{
    public const string FormatName = "GPT";

    /// <summary>Revision 1.0, the only one the spec defines.</summary>
    public const uint Revision10 = 0x00010000;

    /// <summary>Largest entry array VRescue reads (sgdisk writes 16 KiB; the spec sets no limit).</summary>
    public const int MaxEntryArrayBytes = 1024 * 1024;

    /// <summary>"EFI PART".</summary>
    public static ReadOnlySpan<byte> SignatureMagic => "EFI PART"u8;

    /// <summary>The 8 signature bytes as a little-endian UInt64, as stored.</summary>
    public ulong Signature { get; init; } = BinaryPrimitives.ReadUInt64LittleEndian(SignatureMagic);

    public uint Revision { get; init; } = Revision10;

    /// <summary>Bytes covered by the header CRC (92 today).</summary>
    public uint HeaderSize { get; init; } = L.MinHeaderSize;

    /// <summary>Header CRC as stored (ignored by <see cref="Encode"/>, which computes it).</summary>
    public uint HeaderCrc32 { get; init; }

    /// <summary>Bytes 20..23, must be zero.</summary>
    public uint Reserved { get; init; }

    /// <summary>MyLBA: the LBA holding this header (1 for the primary, the last LBA for the backup).</summary>
    public ulong CurrentLba { get; init; }

    /// <summary>AlternateLBA: the LBA of the other header.</summary>
    public ulong BackupLba { get; init; }

    public ulong FirstUsableLba { get; init; }

    /// <summary>Last usable LBA, inclusive.</summary>
    public ulong LastUsableLba { get; init; }

    public Guid DiskGuid { get; init; }

    public ulong PartitionEntriesLba { get; init; }

    public uint NumberOfPartitionEntries { get; init; }

    public uint SizeOfPartitionEntry { get; init; }

    public uint PartitionEntryArrayCrc32 { get; init; }

    /// <summary>CRC over the raw HeaderSize bytes with the CRC field zeroed; null when not decoded or HeaderSize is out of range.</summary>
    public uint? ComputedHeaderCrc32 { get; init; }

    /// <summary>True when the first 8 bytes are "EFI PART".</summary>
    public bool HasSignature => Signature == BinaryPrimitives.ReadUInt64LittleEndian(SignatureMagic);

    /// <summary>
    /// Where to read the entry array, or null when its size is not sane (entry size below 128 or not a multiple of
    /// 128, array over <see cref="MaxEntryArrayBytes"/>, LBA overflowing a byte offset); <see cref="Validate"/> says which.
    /// </summary>
    public GptEntriesRange? EntriesRange
    {
        get
        {
            if (!EntrySizeIsSane || ArrayBytes > MaxEntryArrayBytes ||
                PartitionEntriesLba > (ulong)(long.MaxValue / L.LogicalBlockBytes) - MaxEntryArrayBytes)
            {
                return null;
            }

            return new GptEntriesRange(checked((long)PartitionEntriesLba * L.LogicalBlockBytes), (int)ArrayBytes);
        }
    }

    private bool EntrySizeIsSane =>
        SizeOfPartitionEntry >= GptEntryLayout.MinEntrySize && SizeOfPartitionEntry % GptEntryLayout.MinEntrySize == 0;

    private ulong ArrayBytes => (ulong)NumberOfPartitionEntries * SizeOfPartitionEntry;

    /// <summary>
    /// Decodes the header at the start of <paramref name="block"/> (the whole logical block, so the CRC can cover
    /// HeaderSize bytes). Throws <see cref="ArgumentException"/> only when the span is shorter than 92 bytes.
    /// </summary>
    public static GptHeader Decode(ReadOnlySpan<byte> block)
    {
        if (block.Length < L.MinHeaderSize)
        {
            throw new ArgumentException($"a GPT header needs {L.MinHeaderSize} bytes, got {block.Length}", nameof(block));
        }

        var headerSize = BinaryPrimitives.ReadUInt32LittleEndian(block[L.HeaderSizeOffset..]);
        uint? computed = null;
        if (headerSize >= L.MinHeaderSize && headerSize <= block.Length)
        {
            // UEFI 5.3.2: CRC32 over HeaderSize bytes with the HeaderCRC32 field zeroed during the computation.
            var crc = Crc32.Update(~0u, block[..L.HeaderCrc32Offset]);
            crc = Crc32.Update(crc, stackalloc byte[L.HeaderCrc32Length]);
            crc = Crc32.Update(crc, block[(L.HeaderCrc32Offset + L.HeaderCrc32Length)..(int)headerSize]);
            computed = ~crc;
        }

        return new GptHeader
        {
            Signature = BinaryPrimitives.ReadUInt64LittleEndian(block[L.SignatureOffset..]),
            Revision = BinaryPrimitives.ReadUInt32LittleEndian(block[L.RevisionOffset..]),
            HeaderSize = headerSize,
            HeaderCrc32 = BinaryPrimitives.ReadUInt32LittleEndian(block[L.HeaderCrc32Offset..]),
            Reserved = BinaryPrimitives.ReadUInt32LittleEndian(block[L.ReservedOffset..]),
            CurrentLba = BinaryPrimitives.ReadUInt64LittleEndian(block[L.MyLbaOffset..]),
            BackupLba = BinaryPrimitives.ReadUInt64LittleEndian(block[L.AlternateLbaOffset..]),
            FirstUsableLba = BinaryPrimitives.ReadUInt64LittleEndian(block[L.FirstUsableLbaOffset..]),
            LastUsableLba = BinaryPrimitives.ReadUInt64LittleEndian(block[L.LastUsableLbaOffset..]),
            DiskGuid = new Guid(block.Slice(L.DiskGuidOffset, L.GuidLength), bigEndian: false),
            PartitionEntriesLba = BinaryPrimitives.ReadUInt64LittleEndian(block[L.PartitionEntryLbaOffset..]),
            NumberOfPartitionEntries = BinaryPrimitives.ReadUInt32LittleEndian(block[L.NumberOfPartitionEntriesOffset..]),
            SizeOfPartitionEntry = BinaryPrimitives.ReadUInt32LittleEndian(block[L.SizeOfPartitionEntryOffset..]),
            PartitionEntryArrayCrc32 = BinaryPrimitives.ReadUInt32LittleEndian(block[L.PartitionEntryArrayCrc32Offset..]),
            ComputedHeaderCrc32 = computed,
        };
    }

    /// <summary>Decode, validate, and throw <see cref="CorruptDataException"/> for the first error.</summary>
    public static GptHeader Parse(ReadOnlySpan<byte> block, long headerLba, long diskSizeSectors)
    {
        var header = Decode(block);
        CorruptDataException.ThrowIfErrors(FormatName, "GPT header", header.Validate(headerLba, diskSizeSectors));
        return header;
    }

    /// <summary>
    /// Checks the header as read from <paramref name="headerLba"/> of a disk of <paramref name="diskSizeSectors"/>
    /// (UEFI spec 5.3.2 validation rules, plus the bounds VRescue needs). Finding offsets are relative to the
    /// header's first byte (use <see cref="Finding.Rebase"/>). Without the signature only GPT_BAD_SIGNATURE is given.
    /// </summary>
    public IReadOnlyList<Finding> Validate(long headerLba, long diskSizeSectors)
    {
        var f = new List<Finding>();
        if (!HasSignature)
        {
            f.Add(new Finding("GPT_BAD_SIGNATURE", Severity.Error, $"no \"EFI PART\" signature at LBA {headerLba}",
                L.SignatureOffset, "Signature", $"0x{Signature:X16}", "\"EFI PART\""));
            return f;
        }

        var diskSectors = (ulong)Math.Max(0, diskSizeSectors);
        var lba = (ulong)headerLba;
        var isPrimary = headerLba == 1;
        if (Revision != Revision10)
        {
            f.Add(new Finding("GPT_UNKNOWN_REVISION", Severity.Warning, $"revision {Hex.U32(Revision)} is not 1.0",
                L.RevisionOffset, "Revision", Hex.U32(Revision), Hex.U32(Revision10)));
        }

        if (ComputedHeaderCrc32 is not { } computed)
        {
            f.Add(new Finding("GPT_BAD_HEADER_SIZE", Severity.Error,
                $"header size {HeaderSize} is outside {L.MinHeaderSize}..{L.LogicalBlockBytes}; the header CRC cannot be checked",
                L.HeaderSizeOffset, "HeaderSize", HeaderSize.ToString(), $"{L.MinHeaderSize}..{L.LogicalBlockBytes}"));
        }
        else if (computed != HeaderCrc32)
        {
            f.Add(new Finding("GPT_BAD_HEADER_CRC", Severity.Error, $"header CRC32 does not match at LBA {headerLba}",
                L.HeaderCrc32Offset, "HeaderCRC32", Hex.U32(HeaderCrc32), Hex.U32(computed)));
        }

        if (Reserved != 0)
        {
            f.Add(new Finding("GPT_RESERVED_NONZERO", Severity.Warning, "reserved header bytes 20..23 are not zero",
                L.ReservedOffset, "Reserved", Hex.U32(Reserved), Hex.U32(0)));
        }

        if (CurrentLba != lba)
        {
            f.Add(new Finding("GPT_WRONG_CURRENT_LBA", Severity.Error,
                $"header read at LBA {headerLba} says it lives at LBA {CurrentLba}",
                L.MyLbaOffset, "MyLBA", CurrentLba.ToString(), headerLba.ToString()));
        }

        var expectedAlternate = isPrimary ? diskSectors - 1 : 1UL;
        if (BackupLba >= diskSectors)
        {
            f.Add(new Finding("GPT_ALTERNATE_LBA_BEYOND_DISK", Severity.Warning,
                $"the other header is said to be at LBA {BackupLba}, beyond the disk ({diskSizeSectors} sectors): truncated image?",
                L.AlternateLbaOffset, "AlternateLBA", BackupLba.ToString(), expectedAlternate.ToString()));
        }
        else if (BackupLba != expectedAlternate)
        {
            f.Add(new Finding("GPT_ALTERNATE_LBA_UNEXPECTED", Severity.Warning,
                $"the other header is said to be at LBA {BackupLba}, expected {expectedAlternate} (disk resized?)",
                L.AlternateLbaOffset, "AlternateLBA", BackupLba.ToString(), expectedAlternate.ToString()));
        }

        if (FirstUsableLba > LastUsableLba || FirstUsableLba < 2 || (lba >= FirstUsableLba && lba <= LastUsableLba))
        {
            f.Add(new Finding("GPT_USABLE_RANGE_INVALID", Severity.Error,
                $"usable range {FirstUsableLba}..{LastUsableLba} is empty or covers the GPT headers",
                L.FirstUsableLbaOffset, "FirstUsableLBA", $"{FirstUsableLba}..{LastUsableLba}", $"2..{(diskSectors > 2 ? diskSectors - 2 : 0)}"));
        }
        else if (LastUsableLba >= diskSectors)
        {
            // A warning, not an error: a truncated image keeps its partitions that start before the end.
            f.Add(new Finding("GPT_USABLE_RANGE_BEYOND_DISK", Severity.Warning,
                $"last usable LBA {LastUsableLba} is beyond the disk ({diskSizeSectors} sectors): truncated image or shrunk disk?",
                L.LastUsableLbaOffset, "LastUsableLBA", LastUsableLba.ToString(), $"< {diskSizeSectors}"));
        }

        ValidateEntryArrayPlacement(f, lba, diskSectors);
        return f;
    }

    private void ValidateEntryArrayPlacement(List<Finding> f, ulong lba, ulong diskSectors)
    {
        if (!EntrySizeIsSane)
        {
            f.Add(new Finding("GPT_ENTRY_SIZE_INVALID", Severity.Error,
                $"partition entry size {SizeOfPartitionEntry} is not a multiple of {GptEntryLayout.MinEntrySize}",
                L.SizeOfPartitionEntryOffset, "SizeOfPartitionEntry", SizeOfPartitionEntry.ToString(), "128 * 2^n"));
            return;
        }

        if (ArrayBytes > MaxEntryArrayBytes)
        {
            f.Add(new Finding("GPT_ENTRY_ARRAY_TOO_LARGE", Severity.Error,
                $"{NumberOfPartitionEntries} entries of {SizeOfPartitionEntry} bytes is {ArrayBytes} bytes, over the {MaxEntryArrayBytes}-byte limit",
                L.NumberOfPartitionEntriesOffset, "NumberOfPartitionEntries", NumberOfPartitionEntries.ToString(),
                $"<= {MaxEntryArrayBytes / SizeOfPartitionEntry}"));
            return;
        }

        if (NumberOfPartitionEntries == 0)
        {
            f.Add(new Finding("GPT_NO_ENTRY_SLOTS", Severity.Warning, "the header declares no partition entry slots",
                L.NumberOfPartitionEntriesOffset, "NumberOfPartitionEntries", "0", "128"));
            return;
        }

        var arraySectors = (ArrayBytes + L.LogicalBlockBytes - 1) / L.LogicalBlockBytes;
        var arrayEnd = PartitionEntriesLba > ulong.MaxValue - arraySectors ? ulong.MaxValue : PartitionEntriesLba + arraySectors;
        if (arrayEnd > diskSectors)
        {
            f.Add(new Finding("GPT_ENTRY_ARRAY_BEYOND_DISK", Severity.Error,
                $"entry array at LBA {PartitionEntriesLba} ({arraySectors} sectors) runs past the disk ({diskSectors} sectors)",
                L.PartitionEntryLbaOffset, "PartitionEntryLBA", PartitionEntriesLba.ToString(), $"<= {(diskSectors > arraySectors ? diskSectors - arraySectors : 0)}"));
        }
        else if (PartitionEntriesLba < 2 || (lba >= PartitionEntriesLba && lba < arrayEnd) ||
                 (PartitionEntriesLba <= LastUsableLba && FirstUsableLba < arrayEnd))
        {
            f.Add(new Finding("GPT_ENTRY_ARRAY_MISPLACED", Severity.Error,
                $"entry array at LBA {PartitionEntriesLba}..{arrayEnd - 1} overlaps the MBR, a header or the usable range {FirstUsableLba}..{LastUsableLba}",
                L.PartitionEntryLbaOffset, "PartitionEntryLBA", PartitionEntriesLba.ToString(), "outside the usable range"));
        }
    }

    /// <summary>
    /// Checks <paramref name="entryArray"/> (exactly the bytes of <see cref="EntriesRange"/>) against
    /// PartitionEntryArrayCRC32; returns GPT_BAD_ENTRY_ARRAY_CRC (offset relative to the header) or null.
    /// </summary>
    public Finding? ValidateEntryArrayCrc(ReadOnlySpan<byte> entryArray)
    {
        if ((ulong)entryArray.Length != ArrayBytes)
        {
            throw new ArgumentException($"entry array is {ArrayBytes} bytes, got {entryArray.Length}", nameof(entryArray));
        }

        var computed = Crc32.Ieee(entryArray);
        return computed == PartitionEntryArrayCrc32
            ? null
            : new Finding("GPT_BAD_ENTRY_ARRAY_CRC", Severity.Error,
                $"partition entry array CRC32 does not match (array at LBA {PartitionEntriesLba})",
                L.PartitionEntryArrayCrc32Offset, "PartitionEntryArrayCRC32", Hex.U32(PartitionEntryArrayCrc32), Hex.U32(computed));
    }

    /// <summary>
    /// Writes the header into <paramref name="block"/> (cleared first, so reserved bytes are zero) and stores the
    /// header CRC computed over HeaderSize bytes; <see cref="HeaderCrc32"/> is ignored. Set
    /// <see cref="PartitionEntryArrayCrc32"/> first, e.g. to <c>Crc32.Ieee(array)</c>.
    /// </summary>
    public void Encode(Span<byte> block)
    {
        if (HeaderSize < L.MinHeaderSize || HeaderSize > block.Length)
        {
            throw new ArgumentException($"header size {HeaderSize} must be {L.MinHeaderSize}..{block.Length}");
        }

        block.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.SignatureOffset..], Signature);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.RevisionOffset..], Revision);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.HeaderSizeOffset..], HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.ReservedOffset..], Reserved);
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.MyLbaOffset..], CurrentLba);
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.AlternateLbaOffset..], BackupLba);
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.FirstUsableLbaOffset..], FirstUsableLba);
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.LastUsableLbaOffset..], LastUsableLba);
        DiskGuid.TryWriteBytes(block.Slice(L.DiskGuidOffset, L.GuidLength), bigEndian: false, out _);
        BinaryPrimitives.WriteUInt64LittleEndian(block[L.PartitionEntryLbaOffset..], PartitionEntriesLba);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.NumberOfPartitionEntriesOffset..], NumberOfPartitionEntries);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.SizeOfPartitionEntryOffset..], SizeOfPartitionEntry);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.PartitionEntryArrayCrc32Offset..], PartitionEntryArrayCrc32);
        BinaryPrimitives.WriteUInt32LittleEndian(block[L.HeaderCrc32Offset..], Crc32.Ieee(block[..(int)HeaderSize]));
    }

    /// <summary>The matching backup header: MyLBA and AlternateLBA swapped, entries at <paramref name="backupEntriesLba"/>.</summary>
    public GptHeader AsBackup(ulong backupEntriesLba) =>
        this with { CurrentLba = BackupLba, BackupLba = CurrentLba, PartitionEntriesLba = backupEntriesLba, ComputedHeaderCrc32 = null };
}
