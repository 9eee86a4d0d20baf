// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Storage.Partitions;

namespace VRescue.Recovery.Partitions;

/// <summary>The table a repair would write and why.</summary>
internal sealed record PartitionTablePlan(
    string Table,
    string Source,
    bool NeedsRepair,
    string Confidence,
    List<string> Reasons,
    List<ProposedPartition> Partitions,
    Guid? DiskGuid);

/// <summary>
/// Chooses the table to write, in order of trust: the current table when it is intact and points at every PV
/// found; else a CRC-valid GPT copy (primary, backup, or a backup left at an old disk end) whose entries start where
/// the PVs are; else a table built from the found objects, sized by their own metadata.
/// </summary>
internal static class PartitionTablePlanner
{
    private const int SectorBytes = 512;
    private const long MiB = 1 << 20;

    public static PartitionTablePlan Plan(long diskBytes, PartitionTableReport current, bool? protectiveValid,
        List<FoundPartition> found, List<GptCopyEvidence> gpt, List<Finding> findings)
    {
        var top = found.Where(f => f.NestedIn is null).ToList();
        var pvs = top.Where(f => f.Kind == "lvm-pv").ToList();
        var reasons = new List<string>();
        var diskGuid = gpt.Where(g => g.Info.HeaderValid).Select(g => (Guid?)g.Header.DiskGuid).FirstOrDefault()
            ?? gpt.Select(g => (Guid?)g.Header.DiskGuid).FirstOrDefault(g => g != Guid.Empty);

        if (pvs.Count == 0)
        {
            findings.Add(new Finding("PART_NO_PV_FOUND", Severity.Error,
                "no LVM PV label or metadata area was found anywhere on the disk: there is no SR to point a table at"));
            return new PartitionTablePlan("none", "none", false, "none", ["no PV found"], [], diskGuid);
        }

        if (pvs.Any(p => p.StartBytes == 0))
        {
            reasons.Add("an LVM PV starts at byte 0: the SR uses the whole disk (XenServer iSCSI/HBA SRs have no partition table)");
            return new PartitionTablePlan("none", "none-needed", false, "high", reasons, [], diskGuid);
        }

        var tableHealthy = current.Kind switch
        {
            PartitionTableKind.Gpt => current.PrimaryValid && current.BackupValid && protectiveValid == true,
            PartitionTableKind.Mbr => current.PrimaryValid && !current.Findings.Any(f => f.Severity == Severity.Error),
            _ => false,
        };
        var missing = pvs.Where(p => !current.Partitions.Any(c => c.StartBytes == p.StartBytes)).ToList();
        foreach (var p in missing)
        {
            findings.Add(new Finding("PART_PV_WITHOUT_ENTRY", Severity.Error,
                $"an LVM PV{(p.VgName is null ? "" : $" of VG {p.VgName}")} starts at byte {p.StartBytes} (sector {p.StartBytes / SectorBytes}) but no entry of the current table starts there",
                p.StartBytes));
        }

        if (tableHealthy && missing.Count == 0)
        {
            reasons.Add($"the current {current.Kind.ToString().ToUpperInvariant()} table is intact and has an entry starting at every PV found");
            var kind = current.Kind == PartitionTableKind.Gpt ? "gpt" : "mbr";
            return new PartitionTablePlan(kind, "current", false, "high", reasons, FromCurrent(current), diskGuid);
        }

        if (!tableHealthy)
        {
            reasons.Add(current.Kind switch
            {
                PartitionTableKind.None => "sector 0 holds no partition table and no GPT header is at LBA 1 or the last LBA",
                PartitionTableKind.Gpt => $"the GPT is damaged: primary {(current.PrimaryValid ? "valid" : "INVALID")}, backup {(current.BackupValid ? "valid" : "INVALID")}, protective MBR {(protectiveValid == true ? "valid" : "MISSING")}",
                _ => "the MBR is damaged",
            });
        }
        else
        {
            reasons.Add($"the current {current.Kind.ToString().ToUpperInvariant()} table is intact but no entry starts at {string.Join(", ", missing.Select(p => $"the PV at byte {p.StartBytes}"))}: a new table was written over the old one (e.g. a disk initialised by another OS)");
        }

        var gptPossible = top.All(f => f.StartBytes >= PartitionScanner.GptFirstUsableLba * SectorBytes &&
            (f.EndBytes ?? f.StartBytes) <= (diskBytes / SectorBytes - PartitionScanner.GptTailSectors) * SectorBytes);
        var copy = gpt
            .Where(g => g.Info.HeaderValid && g.Info.EntriesValid && pvs.All(p => g.Entries.Any(e => (long)e.FirstLba * SectorBytes == p.StartBytes)))
            .OrderBy(g => g.Info.Role switch { "primary" => 0, "backup" => 1, _ => 2 })
            .FirstOrDefault();
        if (copy is not null)
        {
            var source = copy.Info.Role == "other" ? $"gpt-at-lba-{copy.Info.Lba}" : $"{copy.Info.Role}-gpt";
            reasons.Add($"the {copy.Info.Role} GPT header at LBA {copy.Info.Lba} and its entry array are CRC-valid, and " +
                string.Join(", ", pvs.Select(p => $"entry {copy.Entries.First(e => (long)e.FirstLba * SectorBytes == p.StartBytes).Index} starts where the PV {p.PvUuid} is")));
            var parts = copy.Entries.Where(e => e.TryGetByteRange(out _, out _)).Select(e => new ProposedPartition(e.Index, (long)e.FirstLba * SectorBytes,
                (long)(e.LastLba - e.FirstLba + 1) * SectorBytes, e.TypeName, e.TypeGuid, MbrTypeFor(e.TypeGuid), e.Name, e.UniqueGuid, e.Attributes,
                $"{copy.Info.Role} GPT at LBA {copy.Info.Lba}, entry {e.Index}")).ToList();
            CheckAgainstFound(parts, top, reasons, findings);
            return new PartitionTablePlan(gptPossible || copy.Info.Role != "other" ? "gpt" : "mbr", source, true, "high", reasons, parts, copy.Header.DiskGuid);
        }

        return FromFound(diskBytes, current, top, gptPossible, reasons, findings, diskGuid);
    }

    private static List<ProposedPartition> FromCurrent(PartitionTableReport current) =>
        current.Partitions.Select(p =>
        {
            var type = p.TypeGuid ?? GptTypeFor(p.TypeCode);
            return new ProposedPartition(p.Index, p.StartBytes, p.SizeBytes, p.TypeName, type, MbrTypeFor(type), p.Name ?? "",
                p.UniqueGuid ?? Guid.NewGuid(), 0, "current table");
        }).ToList();

    private static PartitionTablePlan FromFound(long diskBytes, PartitionTableReport current, List<FoundPartition> top, bool gptPossible,
        List<string> reasons, List<Finding> findings, Guid? diskGuid)
    {
        reasons.Add("no CRC-valid GPT copy has entries at every PV, so the table is built from what the disk holds");
        var usable = top.Where(f => f.Confidence != "low" || f.Kind == "lvm-pv").OrderBy(f => f.StartBytes).ToList();
        var diskSectors = diskBytes / SectorBytes;
        var lastUsableEnd = gptPossible ? (diskSectors - PartitionScanner.GptTailSectors) * SectorBytes : diskSectors * SectorBytes;
        var sized = new List<(FoundPartition F, long Size, string Basis)>();
        for (var i = 0; i < usable.Count; i++)
        {
            var f = usable[i];
            var next = i + 1 < usable.Count ? usable[i + 1].StartBytes : lastUsableEnd;
            long size;
            string basis;
            if (f.SizeBytes is { } s)
            {
                size = s;
                basis = $"start from {f.Evidence[0]}; size from {f.SizeSource}";
                if (f.StartBytes + s > next)
                {
                    findings.Add(new Finding("PART_FOUND_OVERLAP", Severity.Warning,
                        $"the {f.Kind} at byte {f.StartBytes} claims {s} bytes, running into the next object at byte {next}; its entry is cut there",
                        f.StartBytes));
                    size = next - f.StartBytes;
                    basis += " (cut at the next object)";
                }
            }
            else
            {
                size = next - f.StartBytes;
                basis = $"start from {f.Evidence[0]}; nothing states the size, so it runs to {(i + 1 < usable.Count ? "the next object" : "the end of the usable area")}";
            }

            size = size / SectorBytes * SectorBytes;
            if (size > 0)
            {
                sized.Add((f, size, basis));
            }
        }

        // Partition numbers: what the PV metadata recorded (/dev/sda3 -> 3) first, then disk order.
        var numbers = new Dictionary<FoundPartition, int>();
        foreach (var (f, _, _) in sized.Where(x => x.F.PartitionNumberHint is not null))
        {
            if (!numbers.ContainsValue(f.PartitionNumberHint!.Value))
            {
                numbers[f] = f.PartitionNumberHint.Value;
            }
        }

        var nextNumber = 1;
        foreach (var (f, _, _) in sized.Where(x => !numbers.ContainsKey(x.F)))
        {
            while (numbers.ContainsValue(nextNumber))
            {
                nextNumber++;
            }

            numbers[f] = nextNumber++;
        }

        var parts = sized.Select(x =>
        {
            var (gptType, mbrType, name) = PartitionScanner.TypeFor(x.F.Kind);
            return new ProposedPartition(numbers[x.F], x.F.StartBytes, x.Size, name, gptType, MbrPartitionTypes.Code(mbrType),
                x.F.Kind == "lvm-pv" ? "" : x.F.Label ?? "", Guid.NewGuid(), 0, x.Basis);
        }).OrderBy(p => p.Index).ToList();

        var gaps = new List<string>();
        var cursor = PartitionScanner.GptFirstUsableLba * SectorBytes;
        foreach (var p in parts.OrderBy(p => p.StartBytes))
        {
            if (p.StartBytes - cursor >= MiB)
            {
                gaps.Add($"{cursor}..{p.StartBytes - 1} ({(p.StartBytes - cursor) / MiB} MiB)");
            }

            cursor = Math.Max(cursor, p.StartBytes + p.SizeBytes);
        }

        if (gaps.Count > 0)
        {
            reasons.Add($"unexplained space at bytes {string.Join(", ", gaps)}: it may have held a partition without a signature " +
                "(a BIOS boot partition, or XenServer's empty backup partition); those get no entry, so later partition numbers may differ from the original");
        }

        if (parts.FirstOrDefault(p => p.GptTypeGuid == GptPartitionTypes.LinuxLvm) is { } pvPart && top.First(f => f.StartBytes == pvPart.StartBytes).PartitionNumberHint is null)
        {
            reasons.Add($"the PV becomes partition {pvPart.Index}; nothing on disk records its original number (XenServer's local SR is usually partition 3)");
        }

        var alignment = Alignment(parts.Select(p => p.StartBytes));
        reasons.Add($"starts are exactly where the signatures are (aligned to {alignment / 1024} KiB, like the original)");
        var pv = top.Where(f => f.Kind == "lvm-pv").ToList();
        var confidence = pv.All(p => p.Confidence == "high" && p.SizeSource == "pv_header.device_size") ? "high"
            : pv.All(p => p.Confidence != "low") ? "medium" : "low";
        var hasMbrEvidence = current.Kind == PartitionTableKind.Mbr;
        var table = gptPossible && !(hasMbrEvidence && parts.Count <= 4) ? "gpt" : "mbr";
        if (!gptPossible)
        {
            reasons.Add("a found object reaches into the first 34 or last 33 sectors, where a GPT must live: an MBR is proposed");
        }

        return new PartitionTablePlan(table, "found", true, confidence, reasons, parts, diskGuid);
    }

    private static void CheckAgainstFound(List<ProposedPartition> parts, List<FoundPartition> top, List<string> reasons, List<Finding> findings)
    {
        foreach (var f in top.Where(f => f.Kind != "lvm-pv" && f.Confidence != "low"))
        {
            if (!parts.Any(p => p.StartBytes == f.StartBytes))
            {
                findings.Add(new Finding("PART_FOUND_WITHOUT_ENTRY", Severity.Info,
                    $"a {f.Kind} found at byte {f.StartBytes} has no entry in the chosen GPT copy (left over from an older layout?)", f.StartBytes));
            }
        }

        foreach (var p in parts.Where(p => p.GptTypeGuid == GptPartitionTypes.LinuxLvm && !top.Any(f => f.StartBytes == p.StartBytes)))
        {
            reasons.Add($"entry {p.Index} is typed Linux LVM but no PV was found at its start (byte {p.StartBytes})");
        }
    }

    /// <summary>Largest power of two up to 1 MiB dividing every start.</summary>
    internal static long Alignment(IEnumerable<long> starts)
    {
        var a = MiB;
        foreach (var s in starts)
        {
            while (a > SectorBytes && s % a != 0)
            {
                a /= 2;
            }
        }

        return a;
    }

    internal static string MbrTypeFor(Guid gptType) => MbrPartitionTypes.Code(
        gptType == GptPartitionTypes.LinuxLvm ? MbrPartitionTypes.LinuxLvm
        : gptType == GptPartitionTypes.LinuxSwap ? MbrPartitionTypes.LinuxSwap
        : gptType == GptPartitionTypes.EfiSystem ? MbrPartitionTypes.EfiSystem
        : gptType == GptPartitionTypes.MicrosoftBasicData ? MbrPartitionTypes.Ntfs
        : gptType == GptPartitionTypes.BiosBoot ? (byte)0xDA // "Non-FS data": MBR has no BIOS boot type
        : MbrPartitionTypes.Linux);

    private static Guid GptTypeFor(string mbrCode) => mbrCode switch
    {
        "0x8e" => GptPartitionTypes.LinuxLvm,
        "0x82" => GptPartitionTypes.LinuxSwap,
        "0xef" => GptPartitionTypes.EfiSystem,
        "0x07" => GptPartitionTypes.MicrosoftBasicData,
        _ => GptPartitionTypes.LinuxFilesystem,
    };
}
