// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Probe;
using VRescue.Storage;

namespace VRescue.Cli.Commands;

/// <summary>`vrescue probe SOURCE... [--json]`: the layer tree of one or more disks and what is broken.</summary>
public sealed class ProbeCommand : Command
{
    private static readonly Argument<string[]> s_sourcesArgument = new("SOURCE")
    {
        Description = "Image file(s) or block device(s), opened read-only; several for a multi-PV SR",
        Arity = ArgumentArity.OneOrMore,
    };

    public ProbeCommand()
        : base("probe", "Show every layer of a XenServer SR (partition table, PVs, VG, LVs, VDIs) and what is damaged")
    {
        Arguments.Add(s_sourcesArgument);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(s_sourcesArgument) ?? [];
        var output = parse.InvocationConfiguration.Output;
        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var path in paths)
            {
                sources.Add(FileBlockSource.Open(path));
            }

            var report = SrProber.Probe(sources);
            if (parse.GetValue(VRescueApp.JsonOption))
            {
                Json.Write(output, report);
            }
            else
            {
                ProbeRenderer.Write(output, report);
            }

            return ExitCodeFor(report);
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }

    internal static int ExitCodeFor(ProbeReport report)
    {
        if (report.FailureMode is FailureMode.NotAnSr)
        {
            return ExitCodes.NotRecognised;
        }

        if (report.Findings.Any(f => f.Severity == "error"))
        {
            return ExitCodes.Damaged;
        }

        return report.Findings.Any(f => f.Severity == "warning") ? ExitCodes.Warnings : ExitCodes.Ok;
    }
}
