// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Formats.Common;
using VRescue.Recovery.Partitions;
using VRescue.Storage;

namespace VRescue.Cli.Commands.Partitions;

/// <summary>`vrescue partitions scan SOURCE [--json]`: table copies, objects found by signature, the proposed table.</summary>
public sealed class PartitionsScanCommand : Command
{
    private static readonly Argument<string> s_sourceArgument = new("SOURCE")
    {
        Description = "Disk image or block device, opened read-only",
    };

    public PartitionsScanCommand()
        : base("scan", "Read MBR and both GPT copies, search the whole disk for PVs and filesystems, and propose a table")
    {
        Arguments.Add(s_sourceArgument);
        SetAction((parse, cancel) => Task.FromResult(Execute(parse, cancel)));
    }

    private static int Execute(ParseResult parse, CancellationToken cancel)
    {
        var output = parse.InvocationConfiguration.Output;
        var progress = new ScanProgressPrinter(parse.InvocationConfiguration.Error);
        using var source = FileBlockSource.Open(parse.GetValue(s_sourceArgument)!);
        var report = PartitionScanner.Scan(source, progress, cancel);
        progress.Finish();
        if (parse.GetValue(VRescueApp.JsonOption))
        {
            Json.Write(output, report);
        }
        else
        {
            PartitionsRenderer.Write(output, report);
        }

        return ExitCodeFor(report);
    }

    internal static int ExitCodeFor(PartitionScanReport report)
    {
        if (report.ProposalSource == "none")
        {
            return ExitCodes.NotRecognised;
        }

        if (report.NeedsRepair || report.Findings.Any(f => f.Severity == Severity.Error))
        {
            return ExitCodes.Damaged;
        }

        return report.Findings.Any(f => f.Severity == Severity.Warning) ? ExitCodes.Warnings : ExitCodes.Ok;
    }
}
