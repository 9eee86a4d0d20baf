// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Vhd;

namespace VRescue.Cli.Commands.Vhd;

/// <summary>`vrescue vhd repair TARGET --out FILE [--format vhd|raw] [--json]`: the most complete disk the bytes allow, plus FILE.badmap.</summary>
public sealed class VhdRepairCommand : Command
{
    private static readonly Option<string> s_outOption = new("--out")
    {
        Description = "Output file (never the input); the bad-block map goes to FILE.badmap",
        Required = true,
    };

    private static readonly Option<string> s_formatOption = new("--format")
    {
        Description = "vhd (dynamic, XenServer layout) or raw (sparse)",
        DefaultValueFactory = _ => "vhd",
    };

    public VhdRepairCommand()
        : base("repair", "Write a repaired copy of a damaged VHD (footer, header, BAT rebuilt; blocks found by scan) and a bad-block map")
    {
        s_formatOption.AcceptOnlyFromAmong("vhd", "raw");
        Arguments.Add(VhdCommand.TargetArgument);
        Options.Add(VhdCommand.VdiOption);
        Options.Add(s_outOption);
        Options.Add(s_formatOption);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(VhdCommand.TargetArgument)!;
        var output = parse.InvocationConfiguration.Output;
        try
        {
            using var target = VhdTarget.Open(paths, parse.GetValue(VhdCommand.VdiOption));
            var commandLine = "vrescue " + string.Join(' ', parse.Tokens.Select(t => t.Value));
            var report = VhdInspection.Repair(target, parse.GetValue(s_outOption)!, parse.GetValue(s_formatOption)!, commandLine);
            if (parse.GetValue(VRescueApp.JsonOption))
            {
                Json.Write(output, report);
            }
            else
            {
                VhdRenderer.WriteRepair(output, report);
            }

            return report.Check.Verdict == VhdVerdict.DataLoss ? ExitCodes.Damaged : ExitCodes.Ok;
        }
        catch (Exception e) when (e is OutputRefusedException or VhdTargetUsageException)
        {
            parse.InvocationConfiguration.Error.WriteLine("vrescue: " + e.Message);
            return ExitCodes.Usage;
        }
    }
}
