// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;

namespace VRescue.Formats.Mbr;

/// <summary>
/// The MBR in sector 0 (UEFI spec 2.10 section 5.2.1): disk signature, four primary entries and the 0x55AA
/// boot signature. Decoding keeps every stored value, valid or not; <see cref="Validate"/> judges them.
/// </summary>
public sealed record MbrPartitionTable(uint DiskSignature, ushort BootSignature, IReadOnlyList<MbrPartitionEntry> Entries)
{
    public const string FormatName = "MBR";

    /// <summary>True when bytes 510..511 are 0x55 0xAA.</summary>
    public bool HasBootSignature => BootSignature == MbrLayout.BootSignatureValue;

    /// <summary>True when any entry has type 0xEE: the disk claims to be GPT (a protective or hybrid MBR).</summary>
    public bool IsProtective => Entries.Any(e => e.Type == MbrPartitionTypes.GptProtective);

    /// <summary>True for a protective entry next to other used entries (a hybrid MBR, UEFI spec 5.2.3 forbids it).</summary>
    public bool IsHybrid => IsProtective && Entries.Any(e => !e.IsEmpty && e.Type != MbrPartitionTypes.GptProtective);

    /// <summary>True when at least one of the four slots is used.</summary>
    public bool HasEntries => Entries.Any(e => !e.IsEmpty);

    /// <summary>Decodes a 512-byte MBR or EBR sector. Throws <see cref="ArgumentException"/> only for a shorter span.</summary>
    public static MbrPartitionTable Decode(ReadOnlySpan<byte> sector0)
    {
        if (sector0.Length < MbrLayout.SectorBytes)
        {
            throw new ArgumentException($"an MBR sector is {MbrLayout.SectorBytes} bytes, got {sector0.Length}", nameof(sector0));
        }

        var entries = new MbrPartitionEntry[MbrLayout.EntryCount];
        for (var i = 1; i <= MbrLayout.EntryCount; i++)
        {
            entries[i - 1] = MbrPartitionEntry.Decode(i, sector0.Slice(MbrLayout.EntryOffset(i), MbrLayout.EntryLength));
        }

        return new MbrPartitionTable(
            BinaryPrimitives.ReadUInt32LittleEndian(sector0[MbrLayout.DiskSignatureOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(sector0[MbrLayout.BootSignatureOffset..]),
            entries);
    }

    /// <summary>Decode then throw <see cref="CorruptDataException"/> for the first error from <see cref="Validate"/>.</summary>
    public static MbrPartitionTable Parse(ReadOnlySpan<byte> sector0, long diskSizeBytes)
    {
        var table = Decode(sector0);
        CorruptDataException.ThrowIfErrors(FormatName, "MBR", table.Validate(diskSizeBytes));
        return table;
    }

    /// <summary>
    /// Writes disk signature, entries and boot signature into <paramref name="sector0"/>; the boot code
    /// (bytes 0..439) and bytes 444..445 are left as the caller has them.
    /// </summary>
    public void Encode(Span<byte> sector0)
    {
        if (sector0.Length < MbrLayout.SectorBytes)
        {
            throw new ArgumentException($"an MBR sector is {MbrLayout.SectorBytes} bytes, got {sector0.Length}", nameof(sector0));
        }

        if (Entries.Count > MbrLayout.EntryCount)
        {
            throw new ArgumentException($"an MBR holds {MbrLayout.EntryCount} entries, got {Entries.Count}");
        }

        BinaryPrimitives.WriteUInt32LittleEndian(sector0[MbrLayout.DiskSignatureOffset..], DiskSignature);
        sector0.Slice(MbrLayout.PartitionTableOffset, MbrLayout.EntryCount * MbrLayout.EntryLength).Clear();
        foreach (var e in Entries)
        {
            e.Encode(sector0.Slice(MbrLayout.EntryOffset(e.Index), MbrLayout.EntryLength));
        }

        BinaryPrimitives.WriteUInt16LittleEndian(sector0[MbrLayout.BootSignatureOffset..], BootSignature);
    }

    /// <summary>
    /// Checks the sector against a disk of <paramref name="diskSizeBytes"/>. Finding offsets are relative to
    /// the sector start (absolute for the MBR at LBA 0). Codes: MBR_NO_SIGNATURE, MBR_BAD_STATUS,
    /// MBR_ENTRY_AT_LBA0, MBR_ENTRY_BEYOND_DISK, MBR_ENTRIES_OVERLAP, MBR_MULTIPLE_EXTENDED.
    /// </summary>
    public IReadOnlyList<Finding> Validate(long diskSizeBytes)
    {
        var findings = new List<Finding>();
        if (!HasBootSignature)
        {
            // Without 0x55AA the sector is not a partition table at all; judging its "entries" would be noise.
            findings.Add(new Finding("MBR_NO_SIGNATURE", Severity.Error,
                $"no MBR boot signature 0x55AA at offset {MbrLayout.BootSignatureOffset}",
                MbrLayout.BootSignatureOffset, "BootSignature", $"0x{BootSignature:X4}", $"0x{MbrLayout.BootSignatureValue:X4}"));
            return findings;
        }

        var diskSizeSectors = diskSizeBytes / MbrLayout.SectorBytes;
        var extendedCount = 0;
        foreach (var e in Entries)
        {
            var at = MbrLayout.EntryOffset(e.Index);
            if (e.Status is not (0x00 or 0x80))
            {
                findings.Add(new Finding("MBR_BAD_STATUS", Severity.Warning,
                    $"entry {e.Index}: boot indicator 0x{e.Status:X2} is neither 0x00 nor 0x80",
                    at + MbrEntryLayout.BootIndicatorOffset, "Status", $"0x{e.Status:X2}", "0x00 or 0x80"));
            }

            if (e.IsEmpty)
            {
                continue;
            }

            if (e.IsExtended)
            {
                extendedCount++;
            }

            if (e.FirstLba == 0)
            {
                findings.Add(new Finding("MBR_ENTRY_AT_LBA0", Severity.Error,
                    $"entry {e.Index} starts at LBA 0, on top of the MBR itself",
                    at + MbrEntryLayout.StartingLbaOffset, "FirstLba", "0", ">= 1"));
            }

            // UEFI spec 5.2.3: a protective entry is 0xFFFFFFFF sectors when the disk is larger than 2 TiB.
            var clippedProtective = e.Type == MbrPartitionTypes.GptProtective && e.SizeSectors == uint.MaxValue;
            if (e.EndLbaExclusive > diskSizeSectors && !clippedProtective)
            {
                findings.Add(new Finding("MBR_ENTRY_BEYOND_DISK", Severity.Error,
                    $"entry {e.Index} ends at sector {e.EndLbaExclusive} but the disk has {diskSizeSectors} sectors",
                    at + MbrEntryLayout.SizeInLbaOffset, "SizeSectors", e.SizeSectors.ToString(),
                    $"<= {Math.Max(0, diskSizeSectors - e.FirstLba)}"));
            }
        }

        if (extendedCount > 1)
        {
            findings.Add(new Finding("MBR_MULTIPLE_EXTENDED", Severity.Warning,
                $"{extendedCount} extended partitions; only the first is followed (as Linux does)",
                MbrLayout.PartitionTableOffset, "Type", extendedCount.ToString(), "<= 1"));
        }

        var used = Entries.Where(e => !e.IsEmpty).ToList();
        for (var i = 0; i < used.Count; i++)
        {
            for (var j = i + 1; j < used.Count; j++)
            {
                var a = used[i];
                var b = used[j];
                if (a.FirstLba < b.EndLbaExclusive && b.FirstLba < a.EndLbaExclusive)
                {
                    findings.Add(new Finding("MBR_ENTRIES_OVERLAP", Severity.Error,
                        $"entries {a.Index} (sectors {a.FirstLba}..{a.EndLbaExclusive - 1}) and {b.Index} " +
                        $"(sectors {b.FirstLba}..{b.EndLbaExclusive - 1}) overlap",
                        MbrLayout.EntryOffset(b.Index), "FirstLba", b.FirstLba.ToString(), $">= {a.EndLbaExclusive} or ending <= {a.FirstLba}"));
                }
            }
        }

        return findings;
    }
}
