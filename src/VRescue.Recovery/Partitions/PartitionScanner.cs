// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Storage;
using VRescue.Storage.Partitions;
using VRescue.Storage.Scanning;

namespace VRescue.Recovery.Partitions;

/// <summary>
/// `vrescue partitions scan`: reads the current table (MBR, GPT primary and backup), searches the whole disk for
/// the signatures of what partitions hold (LVM label and mda header, ext superblocks, swap, FAT, GPT headers at any
/// LBA), and proposes the table to write. Read-only.
/// </summary>
public static class PartitionScanner
{
    private const int SectorBytes = 512;

    /// <summary>GPT needs LBA 0..33 and the last 33 sectors (protective MBR, headers, 128 x 128-byte entries).</summary>
    internal const long GptFirstUsableLba = 34;
    internal const long GptTailSectors = 33;

    public static PartitionScanReport Scan(IBlockSource disk, IProgress<DiskScanProgress>? progress = null,
        CancellationToken cancel = default, DiskScanOptions? options = null)
    {
        var current = PartitionTableReader.Read(disk);
        var findings = new List<Finding>(current.Findings);
        var scan = DiskSignatureScanner.Scan(disk, options, progress, cancel);
        foreach (var u in scan.Unreadable)
        {
            findings.Add(new Finding("PART_SCAN_UNREADABLE", Severity.Warning,
                $"{u.LengthBytes} bytes at {Hex.Offset(u.OffsetBytes)} could not be read and were not searched: {u.Message}", u.OffsetBytes));
        }

        if (scan.HitLimitReached)
        {
            findings.Add(new Finding("PART_SCAN_HIT_LIMIT", Severity.Warning,
                $"the scan stopped recording signatures after {scan.Hits.Count}; objects further on the disk are not listed"));
        }

        var (found, gpt, evidenceFindings) = PartitionEvidence.Interpret(disk, scan.Hits);
        findings.AddRange(evidenceFindings);
        found = MarkNested(found);
        var protective = current.Kind == PartitionTableKind.Gpt ? ProtectiveMbrValid(disk, current) : (bool?)null;
        var plan = PartitionTablePlanner.Plan(disk.LengthBytes, current, protective, found, gpt, findings);
        var stats = new PartitionScanStats(scan.ScannedBytes, scan.Elapsed.TotalSeconds, scan.BytesPerSecond / 1e6, scan.Hits.Count,
            scan.HitLimitReached, scan.Unreadable.Count);
        var topGpt = gpt.Where(g => g.Info.Role != "other" || !found.Any(f => f.NestedIn is null && Inside(f, g.Info.Lba * SectorBytes)))
            .Select(g => g.Info).ToList();
        return new PartitionScanReport(disk.Name, disk.LengthBytes, current.Kind.ToString().ToLowerInvariant(),
            current.PrimaryValid, current.BackupValid, protective, current.Partitions, topGpt, found,
            plan.Table, plan.Source, plan.NeedsRepair, plan.Confidence, plan.Reasons, plan.Partitions, plan.DiskGuid, findings, stats);
    }

    private static bool ProtectiveMbrValid(IBlockSource disk, PartitionTableReport current) =>
        !current.Findings.Any(f => f.Code is "GPT_PROTECTIVE_MBR_MISSING") &&
        MbrPartitionTable.Decode(disk.ReadBytes(0, SectorBytes)) is { HasBootSignature: true, IsProtective: true };

    private static bool Inside(FoundPartition outer, long offset) =>
        outer.EndBytes is { } end && offset > outer.StartBytes && offset < end;

    /// <summary>
    /// Objects whose start lies inside another found object that starts earlier (a guest's filesystem inside an SR
    /// PV, a disk image inside the host's root filesystem) are nested: listed, never proposed as partitions.
    /// Objects are checked in disk order, so the outermost claims its range first.
    /// </summary>
    internal static List<FoundPartition> MarkNested(List<FoundPartition> found)
    {
        var ordered = found.OrderBy(f => f.StartBytes).ThenBy(f => f.NestedIn is null ? 0 : 1).ThenBy(f => Rank(f.Kind)).ToList();
        var result = new List<FoundPartition>();
        var outers = new List<FoundPartition>();
        foreach (var f in ordered)
        {
            if (f.NestedIn is not null)
            {
                result.Add(f);
                continue;
            }

            var outer = outers.FirstOrDefault(o => Inside(o, f.StartBytes));
            if (outer is not null)
            {
                result.Add(f with { NestedIn = $"{outer.Kind} at byte {outer.StartBytes}" });
                continue;
            }

            if (outers.FirstOrDefault(o => o.StartBytes == f.StartBytes) is { } same)
            {
                // Two objects claim one start (an old filesystem under a new PV): the lower rank wins.
                result.Add(f with { NestedIn = $"{same.Kind} at byte {same.StartBytes} (same start, ranked higher)" });
                continue;
            }

            if (f.SizeBytes is not null && f.Confidence != "low")
            {
                outers.Add(f);
            }

            result.Add(f);
        }

        return result;
    }

    /// <summary>Which object wins a shared start: an SR PV first.</summary>
    internal static int Rank(string kind) => kind switch
    {
        "lvm-pv" => 0,
        "ext4" or "ext3" or "ext2" => 1,
        "swap" => 2,
        _ => 3,
    };

    /// <summary>GPT type for a found kind, as a XenServer host disk uses them.</summary>
    internal static (Guid Gpt, byte Mbr, string Name) TypeFor(string kind) => kind switch
    {
        "lvm-pv" => (GptPartitionTypes.LinuxLvm, MbrPartitionTypes.LinuxLvm, "Linux LVM"),
        "swap" => (GptPartitionTypes.LinuxSwap, MbrPartitionTypes.LinuxSwap, "Linux swap"),
        "fat32" or "fat16" or "fat12" => (GptPartitionTypes.EfiSystem, MbrPartitionTypes.EfiSystem, "EFI System"),
        _ => (GptPartitionTypes.LinuxFilesystem, MbrPartitionTypes.Linux, "Linux filesystem"),
    };
}
