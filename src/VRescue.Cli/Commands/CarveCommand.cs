// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Carving;
using VRescue.Storage;

namespace VRescue.Cli.Commands;

/// <summary>`vrescue carve SOURCE... --out DIR [--json]`: rebuild VHD VDIs when no LVM metadata survives.</summary>
public sealed class CarveCommand : Command
{
    private static readonly Argument<string[]> s_sourcesArgument = new("SOURCE")
    {
        Description = "PV image(s) or device(s) (whole LUN or the SR partition), opened read-only",
        Arity = ArgumentArity.OneOrMore,
    };

    private static readonly Option<string> s_outOption = new("--out")
    {
        Description = "Directory for carved.vg, the carved VDIs (raw) and manifest.json; must not hold a source",
        Required = true,
    };

    private static readonly Option<long?> s_peStartOption = new("--pe-start")
    {
        Description = "Byte offset of PE 0 (default: inferred from MGT or the VHD head grid, else 11 MiB)",
    };

    private static readonly Option<bool> s_noExportOption = new("--no-export")
    {
        Description = "Write carved.vg and manifest.json only, no raw VDI images",
    };

    public CarveCommand()
        : base("carve", "Rebuild VHD VDIs extent by extent when all LVM metadata is gone; write carved.vg and the VDIs")
    {
        Arguments.Add(s_sourcesArgument);
        Options.Add(s_outOption);
        Options.Add(s_peStartOption);
        Options.Add(s_noExportOption);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(s_sourcesArgument) ?? [];
        var outDir = Path.GetFullPath(parse.GetValue(s_outOption)!);
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        foreach (var p in paths)
        {
            var full = Path.GetFullPath(p);
            if (full == outDir || full.StartsWith(outDir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                error.WriteLine($"vrescue: --out {outDir} holds the source {p}; choose another directory (sources are evidence)");
                return ExitCodes.Usage;
            }
        }

        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var path in paths)
            {
                sources.Add(FileBlockSource.Open(path));
            }

            var options = new CarveOptions { PeStartBytes = parse.GetValue(s_peStartOption) };
            var result = Carver.Carve(sources, options, null, CancellationToken.None);
            var manifest = CarveOutput.Write(result, sources, outDir, !parse.GetValue(s_noExportOption), CancellationToken.None);
            if (parse.GetValue(VRescueApp.JsonOption))
            {
                Json.Write(output, manifest);
            }
            else
            {
                Render(output, manifest, outDir);
            }

            if (manifest.Vdis.Count == 0 && manifest.RawVdis.Count == 0)
            {
                return ExitCodes.NotRecognised;
            }

            return manifest.Vdis.Any(v => v.Partial || !v.InCarvedVg) || manifest.RawVdis.Any(r => !r.Recovered)
                || manifest.Findings.Any(f => f.Severity == Formats.Common.Severity.Error)
                ? ExitCodes.Damaged
                : manifest.Vdis.Any(v => v.MinConfidence < 0.8) || manifest.RawVdis.Any(r => r.MinConfidence < 0.8) ? ExitCodes.Warnings : ExitCodes.Ok;
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }

    internal static void Render(TextWriter o, CarveManifest m, string outDir)
    {
        o.WriteLine($"carve: {string.Join(", ", m.Sources)}");
        o.WriteLine($"  grid: pe_start {m.PeStartBytes} B, extent {Units.Size(m.ExtentSizeBytes)}, {m.HeadCount} VHD head(s); VG {m.VgName}");
        foreach (var vg in m.CurrentVgs)
        {
            o.WriteLine($"  current VG {vg.VgName} (seqno {vg.Seqno}): {vg.Lvs.Count} LV(s) left alone: {string.Join(", ", vg.Lvs.Select(l => $"{l.LvName} PE {l.Pes}"))}");
        }

        o.WriteLine($"  time: scan {m.Timings.ScanSeconds:0.00} s ({Units.Size(m.Timings.ScannedBytes)}), solve {m.Timings.SolveSeconds:0.000} s, export {m.Timings.ExportSeconds:0.00} s");
        foreach (var v in m.Vdis)
        {
            var placed = v.Extents.Count(e => e.Carved);
            var low = v.Extents.Count(e => e.Carved && e.Confidence < 0.8);
            var amb = v.Extents.Count(e => e.AlternativePes is { Count: > 0 });
            var state = v.Partial ? "PARTIAL" : !v.InCarvedVg ? "incomplete" : v.GuessedRanges.Count > 0 ? "ok, part guessed" : "ok";
            o.WriteLine($"  {v.LvName}  {v.DiskType}{(v.Hidden ? " hidden" : "")}  {Units.Size(v.VirtualSizeBytes)}  {placed}/{v.LvExtentCount} extents  min confidence {v.MinConfidence:0.00}  [{state}]");
            if (v.NameLabel is not null)
            {
                o.WriteLine($"      name \"{v.NameLabel}\" (MGT)");
            }

            if (v.ParentLvName is not null)
            {
                o.WriteLine($"      parent {v.ParentLvName}");
            }

            if (low > 0 || amb > 0)
            {
                o.WriteLine($"      {low} extent(s) below 0.8 confidence, {amb} ambiguous (see manifest.json)");
            }

            if (v.GuessedRanges.Count > 0)
            {
                o.WriteLine($"      guessed: {Units.Size(v.GuessedRanges.Sum(r => r.LengthBytes))} of guest data in {v.GuessedRanges.Count} range(s) read from extents placed on a guess, "
                    + $"first at guest offset {v.GuessedRanges[0].OffsetBytes}: check them (fsck, file hashes) or swap the PE in carved.vg (manifest guessedRanges)");
            }

            foreach (var r in v.UnreadableRanges.Take(5))
            {
                o.WriteLine($"      unreadable {r.OffsetBytes}+{r.LengthBytes}: {r.Reason}");
            }

            if (v.RawFile is not null)
            {
                o.WriteLine($"      -> {Path.Combine(outDir, v.RawFile)}  sha256 {v.RawSha256}");
            }
        }

        foreach (var r in m.RawVdis)
        {
            var proven = r.Extents.Count(e => e.Confidence >= 0.8);
            o.WriteLine($"  {r.LvName}  raw ext4{(r.VolumeName.Length > 0 ? $" \"{r.VolumeName}\"" : "")}  {Units.Size(r.FsSizeBytes)}  {r.Extents.Count(e => e.Carved)}/{r.LvExtentCount} extents, {proven} proven by superblock copies  [{(r.Recovered ? "ok, contiguous" : "UNPROVEN")}]");
            if (r.RawFile is not null)
            {
                o.WriteLine($"      -> {Path.Combine(outDir, r.RawFile)}  sha256 {r.RawSha256}");
            }
        }

        foreach (var f in m.Findings.Concat(m.Vdis.SelectMany(v => v.Findings)).Concat(m.RawVdis.SelectMany(r => r.Findings)).Where(f => f.Severity != Formats.Common.Severity.Info))
        {
            o.WriteLine($"  {f.Severity.ToString().ToLowerInvariant()} {f.Code}: {f.Message}");
        }

        o.WriteLine($"  wrote {Path.Combine(outDir, "carved.vg")} and {Path.Combine(outDir, "manifest.json")}");
    }
}
