// SPDX-License-Identifier: MIT
using VRescue.Recovery.Probe;

namespace VRescue.Cli.Rendering;

/// <summary>The human layer tree for `vrescue probe`.</summary>
public static class ProbeRenderer
{
    public static void Write(TextWriter o, ProbeReport r)
    {
        foreach (var d in r.Disks)
        {
            var table = d.PartitionTable == "none" ? "no partition table" : $"{d.PartitionTable.ToUpperInvariant()} table";
            if (d.PartitionTable == "gpt")
            {
                table += $" (primary {Health(d.PrimaryValid)}, backup {Health(d.BackupValid)})";
            }

            o.WriteLine($"disk {d.Source}  {Units.Size(d.SizeBytes)}  {table}{(d.Content is null ? "" : "  [" + d.Content + "]")}");
            foreach (var p in d.Partitions)
            {
                o.WriteLine($"├─ partition {p.Index}  {Units.Offset(p.StartBytes)}  {Units.Size(p.SizeBytes)}  {p.Type}{(string.IsNullOrEmpty(p.Name) ? "" : $"  \"{p.Name}\"")}{(p.HoldsPv ? "  <- PV" : "")}");
            }

            foreach (var pv in d.Pvs)
            {
                o.WriteLine($"└─ PV at {Units.Offset(pv.OffsetBytes)}  uuid {pv.PvUuid ?? "?"}  label sector {pv.LabelSector?.ToString() ?? "-"}  device {Units.Size(pv.DeviceSizeBytes)}  pe_start {Units.Size(pv.PeStartBytes)}{(pv.VgName is null ? "" : $"  VG {pv.VgName} seqno {pv.Seqno}")}");
                for (var i = 0; i < pv.MetadataAreas.Count; i++)
                {
                    var m = pv.MetadataAreas[i];
                    var text = m.CommittedOffsetBytes is { } off
                        ? $"committed text at +{Units.Offset(off)} ({Units.Size(m.CommittedSizeBytes)}, crc {m.CommittedCrc}) {(m.TextValid == true ? "ok" : "BAD")}"
                        : "no committed text";
                    o.WriteLine($"   └─ mda{i + 1} at PV+{Units.Offset(m.OffsetBytes)} size {Units.Size(m.SizeBytes)}: header {(m.HeaderValid ? "ok" : "BAD")}, {text}");
                }
            }
        }

        foreach (var sr in r.Srs)
        {
            o.WriteLine();
            o.WriteLine($"SR {sr.SrUuid ?? "?"}  {sr.VgName}{(sr.NameLabel is null ? "" : $"  \"{sr.NameLabel}\"")}");
            o.WriteLine($"   VG uuid {sr.VgUuid}  seqno {sr.Seqno}  extent {Units.Size(sr.ExtentSizeBytes)}  {sr.Pvs.Count} PV(s){(sr.Pvs.Any(p => p.Missing) ? "  (PV MISSING)" : "")}");
            foreach (var pv in sr.Pvs)
            {
                o.WriteLine($"   {pv.PvKey} {pv.PvUuid}  {(pv.Missing ? "MISSING" : $"{pv.Source} at {Units.Offset(pv.OffsetBytes ?? 0)}")}  pe_start {Units.Size(pv.PeStartBytes)}  {pv.PeCount} extents");
            }

            o.WriteLine($"   LVs ({sr.Lvs.Count}):");
            var vdis = sr.Vdis.ToDictionary(v => v.LvName);
            for (var i = 0; i < sr.Lvs.Count; i++)
            {
                var lv = sr.Lvs[i];
                var last = i == sr.Lvs.Count - 1;
                var branch = last ? "   └─ " : "   ├─ ";
                var cont = last ? "         " : "   │     ";
                o.WriteLine($"{branch}{lv.LvName}  {lv.Kind}  {Units.Size(lv.SizeBytes)}  {lv.SegmentCount} segment(s){(lv.Tags.Count > 0 ? "  tags " + string.Join(',', lv.Tags) : "")}");
                if (vdis.TryGetValue(lv.LvName, out var v))
                {
                    WriteVdi(o, cont, v);
                }
            }
        }

        if (r.Findings.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("Findings:");
            foreach (var f in r.Findings)
            {
                var at = f.OffsetBytes is { } off ? $" at {Units.Offset(off)}" : "";
                o.WriteLine($"  [{f.Severity}] {f.Code}{at}{(f.Source is null ? "" : $" ({f.Source})")}: {f.Message}");
                if (f.FailureMode != "none" || f.NextStep is not null)
                {
                    o.WriteLine($"      indicates: {f.FailureMode}{(f.NextStep is null ? "" : $"; next: {f.NextStep}")}");
                }
            }
        }

        o.WriteLine();
        o.WriteLine("Diagnosis: " + r.Diagnosis);
    }

    private static void WriteVdi(TextWriter o, string indent, ProbedVdi v)
    {
        var name = v.NameLabel is null ? "(no MGT record)" : $"\"{v.NameLabel}\"";
        var frag = v.Fragments > 1 ? $"{v.Fragments} fragments" : "contiguous";
        o.WriteLine($"{indent}VDI {v.Uuid} {name}  {v.VdiType}  virtual {Units.Size(v.VirtualSizeBytes)}  {frag}{(v.Hidden ? "  HIDDEN" : "")}{(v.IsSnapshot == true ? $"  snapshot of {v.SnapshotOf}" : "")}");
        if (v.VdiType == "vhd")
        {
            o.WriteLine($"{indent}VHD {v.VhdDiskType ?? "?"}  footer uuid {v.FooterUuid ?? "?"}  footer {Health(v.FooterValid)} ({v.FooterSource ?? "-"})  header {Health(v.HeaderValid)}  {v.AllocatedBlocks?.ToString() ?? "?"} blocks allocated");
            if (v.ParentFooterUuid is not null)
            {
                o.WriteLine($"{indent}parent {(v.ParentUuid is null ? "NOT FOUND" : $"VDI {v.ParentUuid} ({v.ParentLvName})")}  parent footer uuid {v.ParentFooterUuid}");
            }
        }

        var segs = string.Join(", ", v.Segments.Select(s => $"LE {s.StartExtent}+{s.ExtentCount} -> PE {s.PvStartExtent}"));
        o.WriteLine($"{indent}extents: {segs}");
    }

    private static string Health(bool? ok) => ok switch { true => "ok", false => "BAD", null => "n/a" };
}
