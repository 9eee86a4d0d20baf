// SPDX-License-Identifier: MIT
using VRescue.Cli.Rendering;
using VRescue.Formats.Common;
using VRescue.Recovery.Vhd;

namespace VRescue.Cli.Commands.Vhd;

/// <summary>Human output of vhd check and repair.</summary>
internal static class VhdRenderer
{
    public static void WriteCheck(TextWriter w, VhdCheckReport r)
    {
        w.WriteLine($"{r.Source}{(r.Vdi is null ? "" : $" VDI {r.Vdi}")}: {Verdict(r.Verdict)}");
        if (r.DiskType is not null)
        {
            w.WriteLine($"  {r.DiskType} VHD, virtual size {Units.Size(r.VirtualSizeBytes)} ({r.VirtualSizeBytes} bytes), source {Units.Size(r.SourceSizeBytes)}, footer from {r.Stored.FooterSource}");
            w.WriteLine($"  blocks: {r.Blocks.FromBat} from the BAT, {r.Blocks.ByElimination} by elimination, {r.Blocks.Inferred} inferred, {r.Blocks.Lost} lost, {r.Blocks.Orphans} orphan");
        }

        if (r.Chain.Count > 1)
        {
            w.WriteLine($"  chain: {string.Join(" -> ", r.Chain.Select(Path.GetFileName))}");
        }

        if (r.Findings.Count > 0)
        {
            w.WriteLine("findings:");
            foreach (var f in r.Findings)
            {
                var at = (f.OffsetBytes is { } o ? $" @{Units.Offset(o)}" : "")
                    + (f.LvOffsetBytes is { } lo ? $" ({f.Lv} +{Units.Offset(lo)}{(f.Disk is null ? "" : $" on {f.Disk}")})" : "");
                var sv = f.Stored is not null || f.Expected is not null ? $" [{f.Field}: {f.Stored ?? "?"}, expected {f.Expected ?? "?"}]" : "";
                w.WriteLine($"  {Sev(f.Severity)} {f.Code}{at}: {f.Message}{sv}");
            }
        }

        if (r.Repairs.Count > 0)
        {
            w.WriteLine("repair would:");
            foreach (var line in r.Repairs)
            {
                w.WriteLine($"  - {line}");
            }
        }

        if (r.PlacedWithoutBat.Count > 0)
        {
            w.WriteLine("blocks placed without their BAT entry:");
            foreach (var p in r.PlacedWithoutBat)
            {
                w.WriteLine($"  block {p.GuestBlock} <- sector {p.BitmapOffsetBytes / 512} ({p.Provenance.ToString().ToLowerInvariant()}: {p.Evidence})");
            }
        }

        if (r.BadRanges.Count > 0)
        {
            w.WriteLine($"lost guest ranges ({Units.Size(r.LostBytes)}):");
            foreach (var b in r.BadRanges.Take(32))
            {
                w.WriteLine($"  {Units.Offset(b.OffsetBytes)}+{Units.Offset(b.LengthBytes)}: {b.Reason}");
            }

            if (r.BadRanges.Count > 32)
            {
                w.WriteLine($"  ... {r.BadRanges.Count - 32} more (--json lists all)");
            }
        }

        if (r.MissingParent is { } m)
        {
            w.WriteLine($"missing parent: {m.Uuid} \"{m.Name}\" ({m.Reason}); {Units.Size(m.MissingBytes)} of the guest would come from it");
        }

        if (r.Guest is { } g)
        {
            w.WriteLine($"guest: partition table {g.PartitionTable}");
            foreach (var v in g.Volumes)
            {
                w.WriteLine($"  {(v.Partition is { } p ? $"partition {p}" : "whole disk")}{(v.Container is { } c ? $", {c}" : "")} @{Units.Offset(v.StartBytes)} {Units.Size(v.SizeBytes)}: {v.Type}{(string.IsNullOrEmpty(v.Label) ? "" : $" \"{v.Label}\"")}{(v.Uuid is null ? "" : $" {v.Uuid}")}, {v.Health}");
                foreach (var f in v.Findings.Where(f => f.Severity != Severity.Info))
                {
                    w.WriteLine($"    {Sev(f.Severity)} {f.Code}: {f.Message}");
                }

                foreach (var a in v.BadAreas)
                {
                    w.WriteLine($"    lost: {a}");
                }

                if (v.NextStep is not null)
                {
                    w.WriteLine($"    next: {v.NextStep}");
                }
            }
        }
    }

    public static void WriteRepair(TextWriter w, VhdRepairReport r)
    {
        WriteCheck(w, r.Check);
        foreach (var n in r.Notes ?? [])
        {
            w.WriteLine(n);
        }

        w.WriteLine((r.Partial ? "partial: " : "") + $"wrote {r.Out} ({r.Format}, {Units.Size(r.BytesWritten)}); bad-block map {r.BadMapPath} ({r.Check.BadRanges.Count} lost ranges, {Units.Size(r.Check.LostBytes)})");
    }

    private static string Verdict(VhdVerdict v) => v switch
    {
        VhdVerdict.Clean => "clean",
        VhdVerdict.Repairable => "damaged, repairable without data loss",
        VhdVerdict.DataLoss => "damaged, data lost",
        _ => "not a VHD",
    };

    private static string Sev(Severity s) => s switch
    {
        Severity.Error => "error  ",
        Severity.Warning => "warning",
        _ => "info   ",
    };
}
