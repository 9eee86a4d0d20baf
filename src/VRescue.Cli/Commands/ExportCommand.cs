// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Export;
using VRescue.Recovery.Sr;
using VRescue.Storage;

namespace VRescue.Cli.Commands;

/// <summary>
/// `vrescue export SOURCE... --out DIR [--vdi UUID|NAME]... [--all] [--format vhd|raw] [--keep-chain | --no-sha256] [--seqno N [--crc C] | --vg-file F] [--json]`:
/// VDIs as files (docs/json/export.md).
/// </summary>
public sealed class ExportCommand : Command
{
    internal static readonly Argument<string[]> SourcesArgument = new("SOURCE")
    {
        Description = "Image file(s) or block device(s) of the SR, opened read-only",
        Arity = ArgumentArity.OneOrMore,
    };

    internal static readonly Option<string> OutOption = new("--out") { Description = "Directory for the exported files and manifest.json (created; never a source)", Required = true };

    internal static readonly Option<string> FormatOption = new("--format")
    {
        Description = "vhd: dynamic VHD, chain flattened (xe vdi-import format=vhd); raw: sparse raw image",
        DefaultValueFactory = _ => "vhd",
    };

    private static readonly Option<string[]> s_vdiOption = new("--vdi") { Description = "VDI uuid or exact name label (repeatable); default: every visible VDI" };
    private static readonly Option<bool> s_keepChainOption = new("--keep-chain")
    {
        Description = "VHD only: write each layer of a VHD chain as its own file (base dynamic, children differencing VHDs whose locators name the exported parent)",
    };

    private static readonly Option<bool> s_noSha256Option = new("--no-sha256")
    {
        Description = "Skip the sha256 of the guest content (manifest sha256 null): the hash runs on one core at ~1.6 GB/s, slower than fast disks",
    };

    private static readonly Option<bool> s_allOption = new("--all") { Description = "Also export hidden VDIs (base copies; deleted but not yet garbage-collected)" };
    private static readonly Option<long?> s_seqnoOption = new("--seqno") { Description = "Use metadata version N from the metadata area ring instead of the current one" };
    private static readonly Option<string> s_crcOption = new("--crc") { Description = "With --seqno: the text CRC that picks one version when a seqno repeats (vrescue lvm history shows it)" };
    private static readonly Option<string> s_vgFileOption = new("--vg-file") { Description = "Use this LVM VG text file (vgcfgbackup, /etc/lvm/backup) for the extent maps" };

    public ExportCommand()
        : base("export", "Export VDIs as sparse raw images or dynamic VHDs, honouring VHD sector bitmaps and flattening chains")
    {
        FormatOption.AcceptOnlyFromAmong("vhd", "raw");
        Arguments.Add(SourcesArgument);
        Options.Add(OutOption);
        Options.Add(s_vdiOption);
        Options.Add(s_allOption);
        Options.Add(s_keepChainOption);
        Options.Add(s_noSha256Option);
        Options.Add(FormatOption);
        Options.Add(s_seqnoOption);
        Options.Add(s_crcOption);
        Options.Add(s_vgFileOption);
        Validators.Add(r =>
        {
            if (r.GetValue(s_seqnoOption) is not null && r.GetValue(s_vgFileOption) is not null)
            {
                r.AddError("--seqno and --vg-file choose different metadata; give one");
            }

            if (r.GetValue(s_keepChainOption) && r.GetValue(FormatOption) == "raw")
            {
                r.AddError("--keep-chain writes VHD layers; it cannot be combined with --format raw");
            }

            if (r.GetValue(s_keepChainOption) && r.GetValue(s_noSha256Option))
            {
                r.AddError("--no-sha256 applies to flattened exports; --keep-chain reads its layers back for the sha256");
            }

            if (r.GetValue(s_crcOption) is not null && r.GetValue(s_seqnoOption) is null)
            {
                r.AddError("--crc narrows --seqno; give --seqno too");
            }
        });
        SetAction(Execute);
    }

    internal static ExportFormat ParseFormat(string? text) => text == "raw" ? ExportFormat.Raw : ExportFormat.Vhd;

    private static int Execute(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var json = parse.GetValue(VRescueApp.JsonOption);
        var paths = parse.GetValue(SourcesArgument) ?? [];
        IVgMetadataSource metadata;
        try
        {
            metadata = parse.GetValue(s_vgFileOption) is { } file ? BackupFileVgMetadata.Load(file)
                : parse.GetValue(s_seqnoOption) is { } seqno ? new RingVgMetadata(seqno, parse.GetValue(s_crcOption))
                : CurrentVgMetadata.Instance;
        }
        catch (VgMetadataUnavailableException e)
        {
            error.WriteLine("vrescue: " + e.Message);
            return ExitCodes.NotRecognised;
        }

        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var path in paths)
            {
                sources.Add(FileBlockSource.Open(path));
            }

            AssembledSources assembled;
            IReadOnlyList<VdiExportJob> jobs;
            try
            {
                assembled = SrAssembler.Assemble(sources, metadata);
                if (assembled.Srs.Count == 0)
                {
                    error.WriteLine($"vrescue: no SR could be assembled: {assembled.Report.Diagnosis} (run vrescue probe for details)");
                    return ExitCodes.NotRecognised;
                }

                jobs = SrExporter.Select(assembled, parse.GetValue(s_vdiOption) ?? [], parse.GetValue(s_allOption));
            }
            catch (Exception e) when (e is VgMetadataUnavailableException or VdiSelectionException)
            {
                error.WriteLine("vrescue: " + e.Message);
                return e is VdiSelectionException ? ExitCodes.Usage : ExitCodes.NotRecognised;
            }

            var progress = ProgressRenderer.ShouldDraw(error, json) ? new ProgressRenderer(error) : null;
            var manifest = SrExporter.Run(jobs, parse.GetValue(OutOption)!, ParseFormat(parse.GetValue(FormatOption)), sources.Select(s => s.Name).ToList(), progress,
                keepChain: parse.GetValue(s_keepChainOption), sha256: !parse.GetValue(s_noSha256Option));
            if (json)
            {
                Json.Write(output, manifest);
            }
            else
            {
                ExportRenderer.Write(output, manifest);
            }

            return ExitCodeFor(manifest.Vdis);
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }

    internal static int ExitCodeFor(IReadOnlyList<ExportedVdi> vdis) =>
        vdis.Any(v => v.Status != "exported") ? ExitCodes.Damaged
        : vdis.Any(v => v.Warnings.Count > 0) ? ExitCodes.Warnings
        : ExitCodes.Ok;
}
