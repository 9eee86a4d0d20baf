// SPDX-License-Identifier: MIT
using VRescue.Recovery.Lvm;

namespace VRescue.Cli.Rendering;

/// <summary>Human output of `vrescue lvm history`: one timeline per VG, then what a restore can bring back.</summary>
public static class LvmHistoryRenderer
{
    public static void Write(TextWriter o, LvmHistory h)
    {
        foreach (var pv in h.Pvs)
        {
            var label = pv.LabelPvUuid is { } u ? $"PV {u}" : "no valid label";
            var areas = string.Join(", ", pv.Scan.Areas.Select(a =>
                $"mda{a.Index} at {pv.DiskOffsetBytes + a.HeaderOffsetBytes} ({Units.Size(a.SizeBytes)}, {(a.HeaderValid ? "header valid" : $"found by {a.Source.ToString().ToLowerInvariant()}")})"));
            o.WriteLine($"{pv.View.Name}: {label}; {(areas.Length == 0 ? "no metadata area" : areas)}; {pv.Scan.Copies.Count} text copies");
        }

        foreach (var f in h.BackupFiles)
        {
            o.WriteLine($"backup file: {f}");
        }

        foreach (var vg in h.Vgs)
        {
            o.WriteLine();
            var shared = vg.NameShared ? " — another VG on these sources has the same name" : "";
            o.WriteLine($"VG {vg.VgName} (uuid {vg.VgId}): {vg.Versions.Count} versions{shared}");
            o.WriteLine("  seqno  crc       written (UTC)        where                          LVs  change");
            foreach (var v in vg.Versions)
            {
                var at = v.Locations.FirstOrDefault(l => l.Committed) ?? v.Locations[0];
                var where = at.Where == "backup" ? Path.GetFileName(at.Source) : $"{at.Where} @{at.OffsetBytes}{(at.Wrapped ? " wrapped" : "")}";
                var mark = v.Committed ? "*" : " ";
                var change = v.Index == 0 ? v.Description ?? "" : v.Changes.Count == 0 ? $"no LV change ({v.Description})" : string.Join("; ", v.Changes.Select(c => c.Description));
                change = change.Length <= 160 ? change : change[..159] + "…";
                o.WriteLine($" {mark}{v.Seqno,5}  {v.CrcText}  {LvmHistoryJson.Time(v.CreationTimeUnix) ?? "?",-19}  {Trim(where, 30),-30} {v.VolumeGroup.LogicalVolumes.Count,4}  {change}");
            }

            o.WriteLine("  (* = committed: a valid metadata area header points at this copy)");
            foreach (var lost in vg.LostVolumes)
            {
                o.WriteLine($"  {lost.Description} Export: vrescue lvm export SOURCE... --vg {vg.VgName} --seqno {lost.LastSeenSeqno} --crc {lost.LastSeenCrc} -o FILE");
            }
        }

        var notable = h.Findings.Where(f => f.Finding.Severity != VRescue.Formats.Common.Severity.Info).ToList();
        if (notable.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("Findings:");
            foreach (var (source, f) in notable.Take(50))
            {
                o.WriteLine($"  {f.Severity.ToString().ToLowerInvariant()} {f.Code}: {source}{(f.OffsetBytes is { } off ? $" @{off}" : "")}: {f.Message}");
            }

            if (notable.Count > 50)
            {
                o.WriteLine($"  … {notable.Count - 50} more (use --json)");
            }
        }

        if (h.Vgs.Count == 0)
        {
            o.WriteLine("No VG metadata found.");
        }
    }

    private static string Trim(string s, int n) => s.Length <= n ? s : "…" + s[^(n - 1)..];
}
