// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;
using E = VRescue.Formats.Gpt.GptEntryLayout;

namespace VRescue.Formats.Gpt;

/// <summary>One used GPT partition entry as stored (UEFI spec 2.10 section 5.3.3, table 5-6).</summary>
/// <param name="Index">1-based slot number in the entry array (sgdisk's and Linux's partition number).</param>
/// <param name="TypeGuid">PartitionTypeGUID; all zero means the slot is unused.</param>
/// <param name="UniqueGuid">UniquePartitionGUID.</param>
/// <param name="FirstLba">StartingLBA.</param>
/// <param name="LastLba">EndingLBA, inclusive.</param>
/// <param name="Attributes">Attribute bits (bit 0 required, bit 2 legacy BIOS bootable, 48..63 type specific).</param>
/// <param name="Name">PartitionName, UTF-16LE up to the first NUL.</param>
public sealed record GptPartitionEntry(int Index, Guid TypeGuid, Guid UniqueGuid, ulong FirstLba, ulong LastLba, ulong Attributes, string Name)
{
    /// <summary>Human name of <see cref="TypeGuid"/> ("Linux LVM", or "Unknown").</summary>
    public string TypeName => GptPartitionTypes.Name(TypeGuid);

    /// <summary>
    /// The partition's bytes on a 512-byte-sector disk, when FirstLba &lt;= LastLba and the end fits in a long;
    /// false for entries that <see cref="Validate"/> reports as GPT_ENTRY_END_BEFORE_START or absurd.
    /// </summary>
    public bool TryGetByteRange(out long startBytes, out long sizeBytes)
    {
        const ulong maxLba = (ulong)(long.MaxValue / GptHeaderLayout.LogicalBlockBytes) - 1;
        startBytes = 0;
        sizeBytes = 0;
        if (FirstLba > LastLba || LastLba > maxLba)
        {
            return false;
        }

        startBytes = checked((long)FirstLba * GptHeaderLayout.LogicalBlockBytes);
        sizeBytes = checked((long)(LastLba - FirstLba + 1) * GptHeaderLayout.LogicalBlockBytes);
        return true;
    }

    /// <summary>
    /// Decodes the used entries among the first <paramref name="count"/> slots of <paramref name="array"/>,
    /// skipping slots whose type GUID is all zero. The caller bounds the array (<see cref="GptHeader.EntriesRange"/>);
    /// <see cref="ArgumentException"/> when <paramref name="entrySize"/> is below 128 or the array is too short.
    /// </summary>
    public static IReadOnlyList<GptPartitionEntry> DecodeArray(ReadOnlySpan<byte> array, uint count, uint entrySize)
    {
        if (entrySize < E.MinEntrySize)
        {
            throw new ArgumentOutOfRangeException(nameof(entrySize), entrySize, $"a GPT entry is at least {E.MinEntrySize} bytes");
        }

        if ((ulong)count * entrySize > (ulong)array.Length)
        {
            throw new ArgumentException($"{count} entries of {entrySize} bytes do not fit in {array.Length} bytes", nameof(array));
        }

        var entries = new List<GptPartitionEntry>();
        for (var i = 0; i < (int)count; i++)
        {
            var slot = array.Slice(checked(i * (int)entrySize), E.MinEntrySize);
            if (slot[..16].ContainsAnyExcept((byte)0))
            {
                entries.Add(Decode(i + 1, slot));
            }
        }

        return entries;
    }

    /// <summary>Decodes one 128-byte entry, used or not.</summary>
    public static GptPartitionEntry Decode(int index, ReadOnlySpan<byte> entry)
    {
        if (entry.Length < E.MinEntrySize)
        {
            throw new ArgumentException($"a GPT entry is {E.MinEntrySize} bytes, got {entry.Length}", nameof(entry));
        }

        var nameField = entry.Slice(E.PartitionNameOffset, E.PartitionNameLength);
        var nameChars = 0;
        while (nameChars < E.PartitionNameMaxChars && BinaryPrimitives.ReadUInt16LittleEndian(nameField[(nameChars * 2)..]) != 0)
        {
            nameChars++;
        }

        return new GptPartitionEntry(
            index,
            new Guid(entry.Slice(E.PartitionTypeGuidOffset, 16), bigEndian: false),
            new Guid(entry.Slice(E.UniquePartitionGuidOffset, 16), bigEndian: false),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[E.StartingLbaOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[E.EndingLbaOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(entry[E.AttributesOffset..]),
            Encoding.Unicode.GetString(nameField[..(nameChars * 2)]));
    }

    /// <summary>Writes this entry into the first 128 bytes of <paramref name="entry"/> (the whole span is cleared first).</summary>
    public void Encode(Span<byte> entry)
    {
        if (entry.Length < E.MinEntrySize)
        {
            throw new ArgumentException($"a GPT entry is {E.MinEntrySize} bytes, got {entry.Length}", nameof(entry));
        }

        if (Name.Length > E.PartitionNameMaxChars)
        {
            throw new ArgumentException($"partition name is {Name.Length} UTF-16 units, at most {E.PartitionNameMaxChars} fit");
        }

        entry.Clear();
        TypeGuid.TryWriteBytes(entry.Slice(E.PartitionTypeGuidOffset, 16), bigEndian: false, out _);
        UniqueGuid.TryWriteBytes(entry.Slice(E.UniquePartitionGuidOffset, 16), bigEndian: false, out _);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[E.StartingLbaOffset..], FirstLba);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[E.EndingLbaOffset..], LastLba);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[E.AttributesOffset..], Attributes);
        Encoding.Unicode.GetBytes(Name, entry.Slice(E.PartitionNameOffset, E.PartitionNameLength));
    }

    /// <summary>
    /// Writes <paramref name="entries"/> into their slots (Index 1..count) of <paramref name="array"/>, which is
    /// cleared first so every other slot is unused. The array CRC is then <c>Crc32.Ieee(array)</c>.
    /// </summary>
    public static void EncodeArray(IEnumerable<GptPartitionEntry> entries, Span<byte> array, uint entrySize)
    {
        if (entrySize < E.MinEntrySize || entrySize % E.MinEntrySize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(entrySize), entrySize, "entry size must be a multiple of 128");
        }

        array.Clear();
        var count = array.Length / (int)entrySize;
        foreach (var e in entries)
        {
            if (e.Index < 1 || e.Index > count)
            {
                throw new ArgumentException($"entry index {e.Index} is outside 1..{count}");
            }

            e.Encode(array.Slice((e.Index - 1) * (int)entrySize, (int)entrySize));
        }
    }

    /// <summary>
    /// Checks used entries against the header's usable range and each other. Offsets are relative to the start of
    /// the entry array. Codes: GPT_ENTRY_END_BEFORE_START, GPT_ENTRY_OUTSIDE_USABLE, GPT_ENTRIES_OVERLAP,
    /// GPT_DUPLICATE_UNIQUE_GUID.
    /// </summary>
    public static IReadOnlyList<Finding> Validate(IReadOnlyList<GptPartitionEntry> entries, GptHeader header)
    {
        var f = new List<Finding>();
        long At(GptPartitionEntry e, int field) => checked((long)(e.Index - 1) * header.SizeOfPartitionEntry + field);

        var ranged = new List<GptPartitionEntry>();
        foreach (var e in entries)
        {
            if (e.LastLba < e.FirstLba)
            {
                f.Add(new Finding("GPT_ENTRY_END_BEFORE_START", Severity.Error,
                    $"entry {e.Index} ends (LBA {e.LastLba}) before it starts (LBA {e.FirstLba})",
                    At(e, E.EndingLbaOffset), "EndingLBA", e.LastLba.ToString(), $">= {e.FirstLba}"));
                continue;
            }

            ranged.Add(e);
            if (e.FirstLba < header.FirstUsableLba || e.LastLba > header.LastUsableLba)
            {
                f.Add(new Finding("GPT_ENTRY_OUTSIDE_USABLE", Severity.Error,
                    $"entry {e.Index} (LBA {e.FirstLba}..{e.LastLba}) is outside the usable range {header.FirstUsableLba}..{header.LastUsableLba}",
                    At(e, E.StartingLbaOffset), "StartingLBA", $"{e.FirstLba}..{e.LastLba}", $"{header.FirstUsableLba}..{header.LastUsableLba}"));
            }
        }

        // Sort by start and sweep, remembering the entry that reaches furthest: O(n log n) for up to 8192 slots.
        ranged.Sort((a, b) => a.FirstLba != b.FirstLba ? a.FirstLba.CompareTo(b.FirstLba) : a.Index.CompareTo(b.Index));
        GptPartitionEntry? furthest = null;
        foreach (var e in ranged)
        {
            if (furthest is not null && e.FirstLba <= furthest.LastLba)
            {
                f.Add(new Finding("GPT_ENTRIES_OVERLAP", Severity.Error,
                    $"entries {furthest.Index} (LBA {furthest.FirstLba}..{furthest.LastLba}) and {e.Index} (LBA {e.FirstLba}..{e.LastLba}) overlap",
                    At(e, E.StartingLbaOffset), "StartingLBA", e.FirstLba.ToString(), $"> {furthest.LastLba}"));
            }

            if (furthest is null || e.LastLba > furthest.LastLba)
            {
                furthest = e;
            }
        }

        var seen = new Dictionary<Guid, int>();
        foreach (var e in entries)
        {
            if (!seen.TryAdd(e.UniqueGuid, e.Index))
            {
                f.Add(new Finding("GPT_DUPLICATE_UNIQUE_GUID", Severity.Warning,
                    $"entries {seen[e.UniqueGuid]} and {e.Index} share the unique GUID {e.UniqueGuid}",
                    At(e, E.UniquePartitionGuidOffset), "UniquePartitionGUID", e.UniqueGuid.ToString(), "unique"));
            }
        }

        return f;
    }
}
