// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Vhd;

namespace VRescue.Cli.Commands.Vhd;

/// <summary>`vrescue vhd check TARGET [--vdi UUID] [--json]`: every finding with its offset; exit 0 clean, 1 repairable, 2 data loss.</summary>
public sealed class VhdCheckCommand : Command
{
    public VhdCheckCommand()
        : base("check", "Check a VHD (footer and copy, header, BAT, batmap, bitmaps, locators, chain) and the filesystem inside; exit 0 clean, 1 repairable, 2 data loss")
    {
        Arguments.Add(VhdCommand.TargetArgument);
        Options.Add(VhdCommand.VdiOption);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        VhdTarget target;
        try
        {
            target = VhdTarget.Open(parse.GetValue(VhdCommand.TargetArgument)!, parse.GetValue(VhdCommand.VdiOption));
        }
        catch (VhdTargetUsageException e)
        {
            parse.InvocationConfiguration.Error.WriteLine("vrescue: " + e.Message);
            return ExitCodes.Usage;
        }

        using (target)
        {
            var (report, _, _) = VhdInspection.Check(target);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(VRescueApp.JsonOption))
            {
                Json.Write(output, report);
            }
            else
            {
                VhdRenderer.WriteCheck(output, report);
            }

            return ExitCodeFor(report.Verdict);
        }
    }

    internal static int ExitCodeFor(VhdVerdict verdict) => verdict switch
    {
        VhdVerdict.Clean => ExitCodes.Ok,
        VhdVerdict.Repairable => ExitCodes.Warnings,
        VhdVerdict.DataLoss => ExitCodes.Damaged,
        _ => ExitCodes.NotRecognised,
    };
}
