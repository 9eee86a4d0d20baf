// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;

namespace VRescue.Storage.Partitions;

/// <summary>
/// Reads the partition table of a disk (512-byte sectors): GPT from the primary or, failing that, the backup
/// header; otherwise MBR with its EBR chain; otherwise none. Bad bytes give findings, never exceptions; only I/O
/// failures throw (<see cref="SourceReadException"/>). Memory is bounded by two entry arrays of at most
/// <see cref="GptHeader.MaxEntryArrayBytes"/>.
/// </summary>
public static class PartitionTableReader
{
    public const int SectorBytes = 512;

    /// <summary>Reads and judges the table of <paramref name="disk"/>; the disk is only read.</summary>
    public static PartitionTableReport Read(IBlockSource disk)
    {
        var findings = new List<Finding>();
        var diskSectors = disk.LengthBytes / SectorBytes;
        if (diskSectors < 1)
        {
            findings.Add(new Finding("PART_DISK_TOO_SHORT", Severity.Warning,
                $"{disk.Name} is {disk.LengthBytes} bytes, shorter than one sector; no partition table can be there", 0));
            return new PartitionTableReport(PartitionTableKind.None, false, false, [], findings);
        }

        var mbr = MbrPartitionTable.Decode(disk.ReadBytes(0, SectorBytes));
        var primary = ReadGptCopy(disk, 1, diskSectors);
        var lastLba = diskSectors - 1;
        var backup = lastLba > 1 ? ReadGptCopy(disk, lastLba, diskSectors) : GptCopy.Missing(lastLba, "the disk has no room for a backup header");

        if (mbr.HasBootSignature && mbr.HasEntries && !mbr.IsProtective)
        {
            // Linux (block/partitions/efi.c) takes GPT only behind a protective MBR; so do we, but say it.
            foreach (var stale in new[] { primary, backup }.Where(c => c.Header?.HasSignature == true))
            {
                findings.Add(new Finding("PART_STALE_GPT", Severity.Warning,
                    $"a GPT header at LBA {stale.Lba} sits behind an MBR without a 0xEE entry; the MBR is used " +
                    "(an MBR was probably written over a GPT disk; the GPT may describe the older layout)",
                    checked(stale.Lba * SectorBytes)));
            }

            return ReadMbr(disk, mbr, diskSectors, findings);
        }

        if ((mbr.HasBootSignature && mbr.IsProtective) || primary.Header?.HasSignature == true || backup.Header?.HasSignature == true)
        {
            return ReadGpt(disk, mbr, primary, backup, diskSectors, findings);
        }

        if (mbr.HasBootSignature)
        {
            // An empty DOS label: a table exists and holds nothing.
            return new PartitionTableReport(PartitionTableKind.Mbr, true, false, [], findings);
        }

        return new PartitionTableReport(PartitionTableKind.None, false, false, [], findings);
    }

    private static PartitionTableReport ReadMbr(IBlockSource disk, MbrPartitionTable mbr, long diskSectors, List<Finding> findings)
    {
        findings.AddRange(mbr.Validate(disk.LengthBytes));
        var partitions = mbr.Entries
            .Where(e => !e.IsEmpty)
            .Select(e => new PartitionInfo(e.Index, e.StartBytes, e.SizeBytes, MbrPartitionTypes.Name(e.Type), MbrPartitionTypes.Code(e.Type)))
            .ToList();

        if (mbr.Entries.FirstOrDefault(e => !e.IsEmpty && e.IsExtended) is { } extended)
        {
            var chain = new MbrExtendedChain(extended, diskSectors);
            var sector = new byte[SectorBytes];
            while (chain.NextEbrLba is { } lba)
            {
                disk.ReadExactlyAt(checked(lba * SectorBytes), sector);
                chain.Accept(sector);
            }

            findings.AddRange(chain.Findings);
            partitions.AddRange(chain.Partitions.Select(p => new PartitionInfo(p.Index, p.StartBytes, p.SizeBytes,
                MbrPartitionTypes.Name(p.Entry.Type), MbrPartitionTypes.Code(p.Entry.Type))));
        }

        return new PartitionTableReport(PartitionTableKind.Mbr, true, false, partitions, findings);
    }

    private static PartitionTableReport ReadGpt(IBlockSource disk, MbrPartitionTable mbr, GptCopy primary, GptCopy backup,
        long diskSectors, List<Finding> findings)
    {
        CheckProtectiveMbr(mbr, diskSectors, findings);

        // The primary may point at a backup other than the last LBA (disk grown after partitioning).
        if (!backup.Valid && primary.Header is { } ph && primary.HeaderIntact)
        {
            if (ph.BackupLba >= (ulong)diskSectors)
            {
                findings.Add(new Finding("GPT_BACKUP_BEYOND_END", Severity.Warning,
                    $"the primary header puts the backup at LBA {ph.BackupLba} but the disk has {diskSectors} sectors: truncated image?",
                    checked(SectorBytes + GptHeaderLayout.AlternateLbaOffset), "AlternateLBA", ph.BackupLba.ToString(), $"< {diskSectors}"));
            }
            else if ((long)ph.BackupLba != backup.Lba && ph.BackupLba > 1)
            {
                var alternate = ReadGptCopy(disk, (long)ph.BackupLba, diskSectors);
                if (alternate.Valid)
                {
                    backup = alternate;
                }
            }
        }

        findings.AddRange(primary.HeaderFindings);
        findings.AddRange(backup.HeaderFindings);
        GptCopy? used = null;
        if (primary.Valid)
        {
            used = primary;
            if (backup.Valid)
            {
                CompareCopies(primary, backup, findings);
            }
            else
            {
                findings.Add(new Finding("GPT_BACKUP_INVALID", Severity.Warning,
                    $"the backup GPT at LBA {backup.Lba} is damaged or missing; the primary is used", checked(backup.Lba * SectorBytes)));
            }
        }
        else if (backup.Valid)
        {
            used = backup;
            findings.Add(new Finding("GPT_PRIMARY_INVALID", Severity.Warning,
                $"the primary GPT at LBA 1 is damaged or missing; the backup at LBA {backup.Lba} is used", SectorBytes));
        }
        else
        {
            findings.Add(new Finding("GPT_PRIMARY_INVALID", Severity.Error, "the primary GPT at LBA 1 is damaged or missing", SectorBytes));
            findings.Add(new Finding("GPT_BACKUP_INVALID", Severity.Error,
                $"the backup GPT at LBA {backup.Lba} is damaged or missing; no partitions can be listed from the GPT",
                checked(backup.Lba * SectorBytes)));
        }

        var partitions = new List<PartitionInfo>();
        if (used is not null)
        {
            findings.AddRange(used.EntryFindings);
            foreach (var e in used.Entries)
            {
                if (!e.TryGetByteRange(out var startBytes, out var sizeBytes))
                {
                    continue; // GPT_ENTRY_END_BEFORE_START or GPT_ENTRY_OUTSIDE_USABLE already says why.
                }

                if (checked(startBytes + sizeBytes) > disk.LengthBytes)
                {
                    findings.Add(new Finding("GPT_PARTITION_BEYOND_END", Severity.Warning,
                        $"partition {e.Index} ends at byte {startBytes + sizeBytes}, past the end of the disk ({disk.LengthBytes} bytes)",
                        startBytes));
                }

                partitions.Add(new PartitionInfo(e.Index, startBytes, sizeBytes, e.TypeName,
                    GptPartitionTypes.SgdiskCode(e.TypeGuid) ?? e.TypeGuid.ToString("D").ToUpperInvariant(),
                    e.TypeGuid, e.Name, e.UniqueGuid));
            }
        }

        return new PartitionTableReport(PartitionTableKind.Gpt, primary.Valid, backup.Valid, partitions, findings);
    }

    private static void CheckProtectiveMbr(MbrPartitionTable mbr, long diskSectors, List<Finding> findings)
    {
        if (!mbr.HasBootSignature || !mbr.IsProtective)
        {
            findings.Add(new Finding("GPT_PROTECTIVE_MBR_MISSING", Severity.Warning,
                "GPT disk without a protective MBR (no 0x55AA signature or no 0xEE entry); tools may see an unpartitioned disk",
                MbrLayout.BootSignatureOffset));
            return;
        }

        if (mbr.IsHybrid)
        {
            findings.Add(new Finding("GPT_HYBRID_MBR", Severity.Warning,
                "the protective MBR also lists other partitions (hybrid MBR); the GPT is used", MbrLayout.PartitionTableOffset));
            return;
        }

        // UEFI spec 2.10 table 5-4: StartingLBA 1, SizeInLBA the disk size minus one, capped at 0xFFFFFFFF.
        var e = mbr.Entries.First(x => x.Type == MbrPartitionTypes.GptProtective);
        var expectedSize = (uint)Math.Min(diskSectors - 1, uint.MaxValue);
        if (e.FirstLba != 1 || e.SizeSectors != expectedSize)
        {
            findings.Add(new Finding("GPT_PROTECTIVE_MBR_MISMATCH", Severity.Info,
                $"protective entry {e.Index} covers sectors {e.FirstLba}+{e.SizeSectors}, expected 1+{expectedSize}",
                MbrLayout.EntryOffset(e.Index) + MbrEntryLayout.StartingLbaOffset, "FirstLba+SizeSectors",
                $"{e.FirstLba}+{e.SizeSectors}", $"1+{expectedSize}"));
        }
    }

    private static void CompareCopies(GptCopy primary, GptCopy backup, List<Finding> findings)
    {
        var p = primary.Header!;
        var b = backup.Header!;
        var at = checked(backup.Lba * SectorBytes);

        void Differ(string field, int offset, object stored, object expected)
        {
            if (!Equals(stored, expected))
            {
                findings.Add(new Finding("GPT_BACKUP_MISMATCH", Severity.Warning,
                    $"backup header {field} is {stored}, the primary says {expected}", checked(at + offset), field,
                    stored.ToString(), expected.ToString()));
            }
        }

        Differ("DiskGUID", GptHeaderLayout.DiskGuidOffset, b.DiskGuid, p.DiskGuid);
        Differ("FirstUsableLBA", GptHeaderLayout.FirstUsableLbaOffset, b.FirstUsableLba, p.FirstUsableLba);
        Differ("LastUsableLBA", GptHeaderLayout.LastUsableLbaOffset, b.LastUsableLba, p.LastUsableLba);
        Differ("MyLBA", GptHeaderLayout.MyLbaOffset, b.CurrentLba, p.BackupLba);
        Differ("NumberOfPartitionEntries", GptHeaderLayout.NumberOfPartitionEntriesOffset, b.NumberOfPartitionEntries, p.NumberOfPartitionEntries);
        Differ("SizeOfPartitionEntry", GptHeaderLayout.SizeOfPartitionEntryOffset, b.SizeOfPartitionEntry, p.SizeOfPartitionEntry);
        Differ("PartitionEntryArrayCRC32", GptHeaderLayout.PartitionEntryArrayCrc32Offset,
            Hex.U32(b.PartitionEntryArrayCrc32), Hex.U32(p.PartitionEntryArrayCrc32));
    }

    private static GptCopy ReadGptCopy(IBlockSource disk, long lba, long diskSectors)
    {
        if (lba >= diskSectors)
        {
            return GptCopy.Missing(lba, $"LBA {lba} is beyond the end of the disk ({diskSectors} sectors)");
        }

        var headerOffset = checked(lba * SectorBytes);
        var header = GptHeader.Decode(disk.ReadBytes(headerOffset, SectorBytes));
        var headerFindings = header.Validate(lba, diskSectors).Select(f => f.Rebase(headerOffset)).ToList();
        var intact = !headerFindings.Any(f => f.Severity == Severity.Error);
        if (!intact || header.EntriesRange is not { } range || range.OffsetBytes > disk.LengthBytes - range.LengthBytes)
        {
            return new GptCopy(lba, header, intact, false, [], headerFindings, []);
        }

        if (range.LengthBytes == 0)
        {
            return new GptCopy(lba, header, intact, true, [], headerFindings, []); // GPT_NO_ENTRY_SLOTS says it.
        }

        // EntriesRange is at most MaxEntryArrayBytes and lies inside the disk (checked above and by Validate).
        var array = disk.ReadBytes(range.OffsetBytes, range.LengthBytes);
        if (header.ValidateEntryArrayCrc(array) is { } crcFinding)
        {
            headerFindings.Add(crcFinding.Rebase(headerOffset));
            return new GptCopy(lba, header, intact, false, [], headerFindings, []);
        }

        var entries = GptPartitionEntry.DecodeArray(array, header.NumberOfPartitionEntries, header.SizeOfPartitionEntry);
        var entryFindings = GptPartitionEntry.Validate(entries, header).Select(f => f.Rebase(range.OffsetBytes)).ToList();
        return new GptCopy(lba, header, intact, true, entries, headerFindings, entryFindings);
    }

    /// <summary>One GPT copy: header, whether it and its array check out, its entries and findings.</summary>
    private sealed record GptCopy(
        long Lba,
        GptHeader? Header,
        bool HeaderIntact,
        bool Valid,
        IReadOnlyList<GptPartitionEntry> Entries,
        IReadOnlyList<Finding> HeaderFindings,
        IReadOnlyList<Finding> EntryFindings)
    {
        public static GptCopy Missing(long lba, string why) => new(lba, null, false, false, [],
            [new Finding("GPT_HEADER_BEYOND_END", Severity.Error, $"no GPT header can be read at LBA {lba}: {why}")], []);
    }
}
