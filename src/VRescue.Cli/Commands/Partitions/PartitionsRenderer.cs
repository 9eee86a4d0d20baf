// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Partitions;

namespace VRescue.Cli.Commands.Partitions;

/// <summary>Human output of `partitions scan` and `partitions repair`.</summary>
internal static class PartitionsRenderer
{
    public static void Write(TextWriter o, PartitionScanReport r)
    {
        var table = r.Table switch
        {
            "gpt" => $"GPT (primary {Ok(r.PrimaryValid)}, backup {Ok(r.BackupValid)}, protective MBR {Ok(r.ProtectiveMbrValid == true)})",
            "mbr" => $"MBR ({Ok(r.PrimaryValid)})",
            _ => "no partition table",
        };
        o.WriteLine($"disk {r.Source}  {Units.Size(r.SizeBytes)}  {table}");
        foreach (var p in r.Current)
        {
            o.WriteLine($"   current #{p.Index}  {Units.Offset(p.StartBytes)}  {Units.Size(p.SizeBytes)}  {p.TypeName} ({p.TypeCode}){(string.IsNullOrEmpty(p.Name) ? "" : $"  \"{p.Name}\"")}");
        }

        foreach (var g in r.GptHeaders)
        {
            o.WriteLine($"   GPT header at LBA {g.Lba} ({g.Role}): header {Ok(g.HeaderValid)}, entries {Ok(g.EntriesValid)}, {g.UsedEntries} used, disk {g.DiskGuid}");
        }

        o.WriteLine();
        o.WriteLine("found by signature:");
        var top = r.Found.Where(f => f.NestedIn is null).ToList();
        if (top.Count == 0)
        {
            o.WriteLine("   nothing");
        }

        foreach (var f in top)
        {
            var what = f.Kind == "lvm-pv" ? $"PV {f.PvUuid ?? "?"}{(f.VgName is null ? "" : $"  VG {f.VgName}")}" : $"{(string.IsNullOrEmpty(f.Label) ? "" : $"label \"{f.Label}\"  ")}{(f.Uuid is null ? "" : $"uuid {f.Uuid}")}";
            o.WriteLine($"   {f.Kind,-7} {Units.Offset(f.StartBytes)} (sector {f.StartBytes / 512})  {Units.Size(f.SizeBytes)}  {f.Confidence}  {what}");
            foreach (var e in f.Evidence)
            {
                o.WriteLine($"            - {e}");
            }
        }

        var nested = r.Found.Count - top.Count;
        if (nested > 0)
        {
            o.WriteLine($"   ({nested} more inside other objects, e.g. guest filesystems inside the SR; see --json)");
        }

        o.WriteLine();
        if (r.Proposed.Count > 0)
        {
            o.WriteLine($"proposed {r.ProposedTable.ToUpperInvariant()} table (from {r.ProposalSource}, confidence {r.Confidence}{(r.NeedsRepair ? ", repair needed" : ", nothing to repair")}):");
            foreach (var p in r.Proposed)
            {
                o.WriteLine($"   #{p.Index}  sectors {p.FirstLba}..{p.LastLba}  {Units.Size(p.SizeBytes)}  {p.TypeName} ({p.MbrType}){(string.IsNullOrEmpty(p.Name) ? "" : $"  \"{p.Name}\"")}");
            }
        }
        else
        {
            o.WriteLine($"no table proposed ({r.ProposalSource})");
        }

        foreach (var reason in r.Reasons)
        {
            o.WriteLine($"   why: {reason}");
        }

        if (r.Findings.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("findings:");
            foreach (var f in r.Findings)
            {
                o.WriteLine($"   {f.Severity.ToString().ToLowerInvariant(),-7} {f.Code}{(f.OffsetBytes is { } off ? " @" + Units.Offset(off) : "")}: {f.Message}");
            }
        }

        o.WriteLine();
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"scan: {Units.Size(r.Scan.ScannedBytes)} in {r.Scan.Seconds:0.00} s ({r.Scan.MegabytesPerSecond:0} MB/s), {r.Scan.SignatureHits} signature sector(s)"));
    }

    public static void Write(TextWriter o, PartitionRepairResult r)
    {
        o.WriteLine(r.TargetCreated
            ? $"created sparse copy {r.Target} ({Units.Size(r.CopiedBytes)} of data copied from {r.Source})"
            : $"writing into existing copy {r.Target}");
        o.WriteLine($"wrote {r.Table.ToUpperInvariant()} table (from {r.Scan.ProposalSource}, confidence {r.Scan.Confidence}):");
        foreach (var p in r.Partitions)
        {
            o.WriteLine($"   #{p.Index}  sectors {p.FirstLba}..{p.LastLba}  {Units.Size(p.SizeBytes)}  {p.TypeName}");
        }

        o.WriteLine("sectors written (nothing else changed):");
        foreach (var w in r.Writes)
        {
            o.WriteLine($"   {Units.Offset(w.OffsetBytes)} +{w.LengthBytes}  {w.What}");
        }
    }

    private static string Ok(bool valid) => valid ? "valid" : "INVALID";
}
