// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Recovery.Sr;
using VRescue.Storage;

namespace VRescue.Recovery.Export;

/// <summary>A metadata source recover considered, and whether it could be used.</summary>
public sealed record RecoverMetadataUse(string Kind, long? Seqno, string? Path, string Description, bool Used, string? Problem, int VdiCount);

/// <summary>A VDI that is known to have existed but could not be brought back, and why.</summary>
public sealed record NotRecoveredVdi(string Uuid, string? NameLabel, string Reason);

/// <summary>DIR/report.json of `vrescue recover`.</summary>
public sealed record RecoverReport(
    string Tool,
    string CreatedUtc,
    IReadOnlyList<string> Sources,
    string OutDir,
    string Diagnosis,
    string FailureMode,
    IReadOnlyList<RecoverMetadataUse> Metadata,
    IReadOnlyList<ExportedVdi> Recovered,
    IReadOnlyList<NotRecoveredVdi> NotRecovered,
    IReadOnlyList<string> Notes)
{
    public const string FileName = "report.json";
    public const string SummaryFileName = "report.txt";
}

/// <summary>
/// `vrescue recover`: probe, choose the metadata for each VDI (the current metadata; else the newest older version,
/// from the metadata area rings or a supplied backup, that still maps it), export every VDI including recoverable
/// deleted ones, and write manifest.json, report.json and a readable report.txt.
/// </summary>
public static class SrRecoverer
{
    public static RecoverReport Run(IReadOnlyList<IBlockSource> sources, string outDir, ExportFormat format, IReadOnlyList<string> backupFiles,
        IProgress<ExportProgress>? progress = null, CancellationToken cancel = default)
    {
        var sourcePaths = sources.Select(s => s.Name).ToList();
        var dir = SrExporter.PrepareOutDir(outDir, sourcePaths);
        var current = SrAssembler.Assemble(sources);
        var metadataUses = new List<RecoverMetadataUse>();
        var notes = new List<string>();
        var jobs = new List<VdiExportJob>();
        var known = new HashSet<Guid>();

        foreach (var sr in current.Srs)
        {
            metadataUses.Add(Use(sr.Metadata, true, null, sr.Vdis.Count));
            foreach (var vdi in sr.Vdis)
            {
                known.Add(vdi.Uuid);
                if (vdi.Hidden && vdi.HasChildren)
                {
                    notes.Add($"{vdi.Lv.Lv.Name} is a hidden base copy; its data is part of the VDIs that use it as a parent");
                    continue;
                }

                var extra = vdi.IsHiddenLeaf ? new[] { "hidden and nobody's parent: deleted in XenServer but not yet garbage-collected" } : [];
                jobs.Add(new VdiExportJob(sr, vdi, vdi.IsHiddenLeaf, extra));
            }
        }

        // Backups, newest seqno first: each VDI comes from the newest version that still has it.
        var backups = new List<AssembledSr>();
        foreach (var file in backupFiles)
        {
            try
            {
                var backup = BackupFileVgMetadata.Load(file);
                var assembled = SrAssembler.Assemble(sources, backup);
                backups.AddRange(assembled.Srs);
                if (assembled.Srs.All(s => s.Vdis.Count == 0))
                {
                    metadataUses.Add(Use(backup.Choice, false, "no VDI LVs of this VG found on the sources", 0));
                }
            }
            catch (VgMetadataUnavailableException e)
            {
                metadataUses.Add(new RecoverMetadataUse("backup-file", null, Path.GetFullPath(file), $"backup file {file}", false, e.Message, 0));
            }
        }

        backups.AddRange(RingVersions(sources, current, known, metadataUses, notes, cancel));
        foreach (var sr in backups.OrderByDescending(s => s.Vdis.Count == 0 ? long.MinValue : s.Vg.Seqno))
        {
            var added = 0;
            foreach (var vdi in sr.Vdis.Where(v => !known.Contains(v.Uuid) && !(v.Hidden && v.HasChildren)))
            {
                known.Add(vdi.Uuid);
                jobs.Add(new VdiExportJob(sr, vdi, Deleted: true, ReusedExtentWarnings(vdi, sr, current.Srs).Prepend(
                    $"not in the current metadata: deleted (or lost); recovered with the extent map of {sr.Metadata.Describe()}").ToList()));
                added++;
            }

            if (sr.Vdis.Count > 0)
            {
                metadataUses.Add(Use(sr.Metadata, added > 0, added > 0 ? null : "every VDI it maps is also in a newer version", added));
            }
        }

        // Carving (issue 8): no metadata at all, or VHD heads in extents no metadata version maps (SR re-created over it).
        var carve = Carving.CarveRecovery.Plan(sources, current.Srs.Concat(backups).ToList(), current.Srs.Count > 0 || jobs.Count > 0, cancel);
        if (carve is not null)
        {
            metadataUses.Add(new RecoverMetadataUse("carved", null, Path.Combine(dir, "carved.vg"), $"carved from the VHD structures: {carve.Reason}",
                carve.ExportCount > 0, carve.ExportCount > 0 ? null : "found no VDI that metadata does not already map", carve.ExportCount));
            notes.AddRange(carve.Notes);
            File.WriteAllText(Path.Combine(dir, "carved.vg"), Carving.CarveOutput.WriteVg(carve.Result));
        }

        var total = jobs.Count + (carve?.ExportCount ?? 0);
        var results = new List<ExportedVdi>();
        for (var i = 0; i < jobs.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(SrExporter.ExportOne(jobs[i], dir, format, sourcePaths, progress, i, total, cancel));
        }

        foreach (var v in carve?.Vdis ?? [])
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(Carving.CarveRecovery.Export(carve!, v, sources, dir, format, progress, results.Count, total, cancel));
        }

        foreach (var raw in carve?.RawVdis ?? [])
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(Carving.CarveRecovery.ExportRaw(carve!, raw, sources, dir, format, progress, results.Count, total, cancel));
        }

        var notRecovered = NotRecovered(current, known, results);
        notRecovered.AddRange((carve?.UnprovenRawVdis ?? []).Select(r => new NotRecoveredVdi(r.FsUuid.ToString(), null,
            string.Join(" ", r.Findings.Select(f => $"{f.Code}: {f.Message}")))));
        var created = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        new ExportManifest("vrescue", created, sourcePaths, dir, results).Write(dir);
        var (diagnosis, mode) = (current.Report.Diagnosis, current.Report.FailureMode);
        if (current.Srs.Count == 0 && carve is { ExportCount: > 0 })
        {
            // The probe saw no SR (no label, no metadata area), yet VHD heads on an extent grid are there: the case is
            // LVM metadata lost, whatever else the first MiB shows.
            (diagnosis, mode) = ($"XenServer SR whose LVM metadata is gone: {carve.ExportCount} VDI(s) found by their VHD structures on an extent grid "
                + $"starting at byte {carve.Result.PeStartBytes} (pe_start), VG {Carving.CarveOutput.VgName(carve.Result)} (the probe alone saw: {current.Report.Diagnosis})",
                Probe.FailureMode.LvmMetadataDamaged);
            var shift = carve.Result.PeStartBytes - UsualPeStartBytes;
            if (shift > 0 && shift % (1 << 20) == 0)
            {
                diagnosis += $"; the grid starts {shift} bytes past XenServer's usual pe_start ({UsualPeStartBytes}): the PV probably began at byte {shift}, "
                    + "in a partition whose table is gone too";
            }
        }

        var report = new RecoverReport("vrescue", created, sourcePaths, dir, diagnosis, Probe.FailureModes.Name(mode), metadataUses, results, notRecovered, notes);
        ExportJson.WriteFile(Path.Combine(dir, RecoverReport.FileName), report);
        File.WriteAllText(Path.Combine(dir, RecoverReport.SummaryFileName), Summary(report));
        return report;
    }

    /// <summary>
    /// Older versions from the metadata rings (`lvm history`), newest first, assembled only when they map a VDI no
    /// newer source has: that is how a deleted VDI or snapshot whose extents were not reused comes back.
    /// </summary>
    private static List<AssembledSr> RingVersions(IReadOnlyList<IBlockSource> sources, AssembledSources current, HashSet<Guid> known,
        List<RecoverMetadataUse> uses, List<string> notes, CancellationToken cancel)
    {
        var result = new List<AssembledSr>();
        var history = Lvm.LvmHistoryReader.Read(sources, cancel: cancel);
        var currentKeys = current.Srs.Select(s => (s.Vg.Id, s.Vg.Seqno)).ToHashSet();
        var versions = history.Vgs.SelectMany(h => h.Versions)
            .Where(v => !currentKeys.Contains((v.VgId, v.Seqno)) || !v.Committed)
            .OrderByDescending(v => v.Seqno).ToList();
        var pending = new HashSet<Guid>(known);
        var examined = 0;
        foreach (var version in versions)
        {
            cancel.ThrowIfCancellationRequested();
            var missing = version.VolumeGroup.LogicalVolumes
                .Select(lv => Formats.Xen.XenLvName.Parse(lv.Name))
                .Where(n => n.Kind is Formats.Xen.XenLvKind.VhdVdi or Formats.Xen.XenLvKind.RawVdi && n.VdiUuid is { } u && !pending.Contains(u))
                .Select(n => n.VdiUuid!.Value).ToList();
            examined++;
            if (missing.Count == 0)
            {
                continue;
            }

            var assembled = SrAssembler.Assemble(sources, new RingVgMetadata(version));
            foreach (var sr in assembled.Srs)
            {
                result.Add(sr);
                pending.UnionWith(sr.Vdis.Select(v => v.Uuid));
            }
        }

        if (versions.Count > 0)
        {
            notes.Add($"searched {examined} older metadata version(s) in the metadata area rings for VDIs missing from the current metadata");
        }

        return result;
    }

    /// <summary>pe_start of a PV made by SM's `vgcreate --metadatasize 10M` with lvm2's 1 MiB alignment: 11 MiB (xenserver-lvhd.md, PV options).</summary>
    private const long UsualPeStartBytes = 11L << 20;

    /// <summary>The readable summary (DIR/report.txt; the CLI prints the same).</summary>
    public static string Summary(RecoverReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Sources: {string.Join(", ", r.Sources)}");
        sb.AppendLine($"Found: {r.Diagnosis}");
        sb.AppendLine("Metadata:");
        foreach (var m in r.Metadata)
        {
            sb.AppendLine($"  {(m.Used ? "used    " : "not used")} {m.Description}{(m.Used ? $": {m.VdiCount} VDI(s)" : "")}{(m.Problem is null ? "" : $" ({m.Problem})")}");
        }

        var ok = r.Recovered.Count(v => v.Status == "exported");
        sb.AppendLine($"Recovered {ok} of {r.Recovered.Count} VDI(s) into {r.OutDir}:");
        foreach (var v in r.Recovered)
        {
            var name = v.NameLabel is null ? "" : $" \"{v.NameLabel}\"";
            var tag = (v.Deleted ? " [deleted]" : "") + (v.Carve is { GuessedBytes: > 0 } ? " [part guessed]" : "");
            sb.AppendLine(v.Status == "failed"
                ? $"  FAILED   {v.Uuid}{name}{tag}: {v.Error}"
                : $"  {(v.Status == "partial" ? "PARTIAL " : "ok      ")} {v.File}{tag}  {v.VirtualSizeBytes} bytes, sha256 {v.Sha256}, from {v.Source.Description}");
            foreach (var w in v.Warnings)
            {
                sb.AppendLine($"           warning: {w}");
            }
        }

        if (r.NotRecovered.Count > 0)
        {
            sb.AppendLine("Not recovered:");
            foreach (var n in r.NotRecovered)
            {
                sb.AppendLine($"  {n.Uuid}{(n.NameLabel is null ? "" : $" \"{n.NameLabel}\"")}: {n.Reason}");
            }
        }

        foreach (var n in r.Notes)
        {
            sb.AppendLine($"Note: {n}");
        }

        sb.AppendLine($"Details: {Path.Combine(r.OutDir, RecoverReport.FileName)}, {Path.Combine(r.OutDir, ExportManifest.FileName)}");
        return sb.ToString();
    }

    private static RecoverMetadataUse Use(VgMetadataChoice c, bool used, string? problem, int count) =>
        new(c.KindName, c.Seqno, c.Path, c.Describe(), used, problem, count);

    /// <summary>PEs of a VDI from an older map that the current metadata gives to another LV: their content may be overwritten.</summary>
    private static IEnumerable<string> ReusedExtentWarnings(AssembledVdi vdi, AssembledSr old, IReadOnlyList<AssembledSr> currentSrs)
    {
        var current = currentSrs.FirstOrDefault(s => s.Vg.Id == old.Vg.Id);
        if (current is null)
        {
            yield break;
        }

        foreach (var seg in vdi.Lv.Segments)
        {
            foreach (var lv in current.Lvs)
            {
                foreach (var other in lv.Segments.Where(o => o.PvUuid == seg.PvUuid))
                {
                    var start = Math.Max(seg.PvStartExtent, other.PvStartExtent);
                    var end = Math.Min(seg.PvStartExtent + seg.ExtentCount, other.PvStartExtent + other.ExtentCount);
                    if (start < end)
                    {
                        yield return $"PEs {start}..{end - 1} of {vdi.Lv.Lv.Name} now belong to {lv.Lv.Name}: that part may have been overwritten";
                    }
                }
            }
        }
    }

    private static List<NotRecoveredVdi> NotRecovered(AssembledSources current, HashSet<Guid> known, List<ExportedVdi> results)
    {
        var list = results.Where(r => r.Status == "failed").Select(r => new NotRecoveredVdi(r.Uuid, r.NameLabel, r.Error ?? "export failed")).ToList();
        foreach (var sr in current.Srs)
        {
            foreach (var rec in sr.Mgt?.Records.Where(r => r.Uuid is { } u && !known.Contains(u) && r.Type is not "metadata" && r.VdiType is "vhd" or "aio") ?? [])
            {
                known.Add(rec.Uuid!.Value);
                list.Add(new NotRecoveredVdi(rec.Uuid!.Value.ToString(), rec.NameLabel,
                    $"recorded in MGT{(rec.IsDeleted ? " as deleted" : "")} but no supplied metadata version maps its extents; an older version from the metadata ring (vrescue lvm history) or a --backup file may"));
            }
        }

        return list;
    }
}
