// SPDX-License-Identifier: MIT
using VRescue.Recovery.Sr;

namespace VRescue.Recovery.Export;

/// <summary>A --vdi selector matched nothing, or matched more than one VDI by name.</summary>
public sealed class VdiSelectionException(string message) : Exception(message);

/// <summary>`vrescue export`: choose VDIs of assembled SRs and export each into the output directory with a manifest.</summary>
public static class SrExporter
{
    /// <summary>
    /// The VDIs to export: those named by <paramref name="selectors"/> (uuid, or exact name label); with none, every
    /// visible VDI, and with <paramref name="all"/> also hidden ones (base copies, deleted but not yet collected).
    /// </summary>
    public static IReadOnlyList<VdiExportJob> Select(AssembledSources assembled, IReadOnlyList<string> selectors, bool all)
    {
        var vdis = assembled.Srs.SelectMany(sr => sr.Vdis.Select(v => (Sr: sr, Vdi: v))).ToList();
        if (selectors.Count == 0)
        {
            return vdis.Where(x => all || !x.Vdi.Hidden).Select(x => new VdiExportJob(x.Sr, x.Vdi, Deleted: x.Vdi.IsHiddenLeaf)).ToList();
        }

        var jobs = new List<VdiExportJob>();
        foreach (var selector in selectors)
        {
            var matches = Guid.TryParse(selector, out var uuid)
                ? vdis.Where(x => x.Vdi.Uuid == uuid).ToList()
                : vdis.Where(x => string.Equals(x.Vdi.NameLabel, selector, StringComparison.Ordinal)).ToList();
            if (matches.Count == 0)
            {
                var known = string.Join(", ", vdis.Select(x => x.Vdi.NameLabel is { } n ? $"{x.Vdi.Uuid} \"{n}\"" : x.Vdi.Uuid.ToString()));
                throw new VdiSelectionException($"--vdi {selector}: no such VDI in the assembled SR(s); known: {(known.Length == 0 ? "none" : known)}");
            }

            if (matches.Count > 1 && !Guid.TryParse(selector, out _))
            {
                throw new VdiSelectionException($"--vdi \"{selector}\" names {matches.Count} VDIs ({string.Join(", ", matches.Select(m => m.Vdi.Uuid))}); give the uuid");
            }

            jobs.AddRange(matches.Where(m => jobs.All(j => j.Vdi != m.Vdi)).Select(m => new VdiExportJob(m.Sr, m.Vdi, Deleted: m.Vdi.IsHiddenLeaf)));
        }

        return jobs;
    }

    /// <summary>
    /// Exports <paramref name="jobs"/> into <paramref name="outDir"/> and writes manifest.json there. Evidence paths in
    /// <paramref name="sourcePaths"/> are never written: an output that would land on one of them is refused. <paramref name="keepChain"/> (VHD only) writes
    /// each layer of a VHD chain as its own file (base dynamic, children differencing). <paramref name="sha256"/> false
    /// skips the content hash of flattened exports (manifest sha256 null).
    /// </summary>
    public static ExportManifest Run(IReadOnlyList<VdiExportJob> jobs, string outDir, ExportFormat format, IReadOnlyList<string> sourcePaths,
        IProgress<ExportProgress>? progress = null, CancellationToken cancel = default, bool keepChain = false, bool sha256 = true)
    {
        if (keepChain && format != ExportFormat.Vhd)
        {
            throw new ArgumentException("keepChain writes VHD layers; it needs the VHD format", nameof(keepChain));
        }

        var dir = PrepareOutDir(outDir, sourcePaths);
        var layers = keepChain ? new ExportLayerCache() : null;
        var results = new List<ExportedVdi>();
        for (var i = 0; i < jobs.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            results.Add(ExportOne(jobs[i], dir, format, sourcePaths, progress, i, jobs.Count, cancel, layers, sha256));
        }

        var manifest = new ExportManifest("vrescue", DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"), sourcePaths, dir, results);
        manifest.Write(dir);
        return manifest;
    }

    /// <summary>Creates the directory; refuses one that is, or resolves to, an evidence source.</summary>
    public static string PrepareOutDir(string outDir, IReadOnlyList<string> sourcePaths)
    {
        var dir = Path.GetFullPath(outDir);
        if (sourcePaths.Any(s => SamePath(s, dir)))
        {
            throw new ArgumentException($"--out {dir} is one of the sources; choose a directory for the exported files");
        }

        if (File.Exists(dir))
        {
            throw new IOException($"--out {dir} is a file, not a directory");
        }

        Directory.CreateDirectory(dir);
        return dir;
    }

    internal static ExportedVdi ExportOne(VdiExportJob job, string dir, ExportFormat format, IReadOnlyList<string> sourcePaths,
        IProgress<ExportProgress>? progress, int index, int count, CancellationToken cancel, ExportLayerCache? layers = null, bool sha256 = true)
    {
        var ext = format == ExportFormat.Vhd ? "vhd" : "raw";
        var target = ExportNames.PathInside(dir, ExportNames.FileName(job.Vdi.Uuid, job.Vdi.NameLabel, ext));
        if (sourcePaths.Any(s => SamePath(s, target)))
        {
            return new ExportedVdi
            {
                Uuid = job.Vdi.Uuid.ToString(), NameLabel = job.Vdi.NameLabel, Format = ext, Chain = [], Source = ExportSource.From(job.Sr.Metadata),
                Warnings = [], Status = "failed", Error = $"the output {target} is one of the sources; not overwritten",
            };
        }

        return VdiExporter.Export(job, dir, format, progress, index, count, cancel, layers, sha256);
    }

    private static bool SamePath(string a, string b)
    {
        static string Resolve(string p)
        {
            var full = Path.GetFullPath(p);
            try
            {
                return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
            }
            catch (IOException)
            {
                return full;
            }
        }

        return string.Equals(Resolve(a).TrimEnd('/'), Resolve(b).TrimEnd('/'), StringComparison.Ordinal);
    }
}
