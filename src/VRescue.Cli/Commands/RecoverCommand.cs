// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Export;
using VRescue.Storage;

namespace VRescue.Cli.Commands;

/// <summary>
/// `vrescue recover SOURCE... --out DIR [--backup PATH]... [--format vhd|raw] [--json]`: the common case in one command:
/// probe, pick metadata per VDI, export everything recoverable, write report.json and report.txt.
/// </summary>
public sealed class RecoverCommand : Command
{
    private static readonly Argument<string[]> s_sourcesArgument = new("SOURCE")
    {
        Description = "Image file(s) or block device(s) of the SR, opened read-only",
        Arity = ArgumentArity.OneOrMore,
    };

    private static readonly Option<string> s_outOption = new("--out") { Description = "Directory for the recovered VDIs, manifest.json, report.json, report.txt", Required = true };
    private static readonly Option<string[]> s_backupOption = new("--backup") { Description = "LVM VG backup/archive file(s) (/etc/lvm/backup, vgcfgbackup) for VDIs the current metadata lost" };

    private static readonly Option<string> s_formatOption = new("--format")
    {
        Description = "vhd: dynamic VHD, chain flattened (xe vdi-import format=vhd); raw: sparse raw image",
        DefaultValueFactory = _ => "vhd",
    };

    public RecoverCommand()
        : base("recover", "Recover every VDI of a damaged SR (including deleted ones a backup still maps) into a directory, with a report")
    {
        s_formatOption.AcceptOnlyFromAmong("vhd", "raw");
        Arguments.Add(s_sourcesArgument);
        Options.Add(s_outOption);
        Options.Add(s_backupOption);
        Options.Add(s_formatOption);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var json = parse.GetValue(VRescueApp.JsonOption);
        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var path in parse.GetValue(s_sourcesArgument) ?? [])
            {
                sources.Add(FileBlockSource.Open(path));
            }

            var progress = ProgressRenderer.ShouldDraw(error, json) ? new ProgressRenderer(error) : null;
            var report = SrRecoverer.Run(sources, parse.GetValue(s_outOption)!, ExportCommand.ParseFormat(parse.GetValue(s_formatOption)),
                parse.GetValue(s_backupOption) ?? [], progress);
            if (json)
            {
                Json.Write(output, report);
            }
            else
            {
                output.Write(SrRecoverer.Summary(report));
            }

            if (report.Recovered.Count == 0 && report.NotRecovered.Count == 0)
            {
                return ExitCodes.NotRecognised;
            }

            return report.NotRecovered.Count > 0 ? ExitCodes.Damaged : ExportCommand.ExitCodeFor(report.Recovered);
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }
}
