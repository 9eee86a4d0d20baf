// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Partitions;

namespace VRescue.Cli.Commands.Partitions;

/// <summary>`vrescue partitions repair SOURCE --into TARGET [--table gpt|mbr]`: write the proposed table into a copy.</summary>
public sealed class PartitionsRepairCommand : Command
{
    private static readonly Argument<string> s_sourceArgument = new("SOURCE")
    {
        Description = "Damaged disk image or block device, opened read-only and never written",
    };

    private static readonly Option<string> s_intoOption = new("--into")
    {
        Description = "Copy to write the table into: an existing copy of SOURCE, or a new file VRescue creates as a sparse copy first",
        Required = true,
    };

    private static readonly Option<string?> s_tableOption = new("--table")
    {
        Description = "Table to write (default: what scan proposes)",
    };

    public PartitionsRepairCommand()
        : base("repair", "Write the table `partitions scan` proposes into a copy of the disk; only the table sectors change")
    {
        Arguments.Add(s_sourceArgument);
        s_tableOption.AcceptOnlyFromAmong("gpt", "mbr");
        Options.Add(s_intoOption);
        Options.Add(s_tableOption);
        SetAction((parse, cancel) => Task.FromResult(Execute(parse, cancel)));
    }

    private static int Execute(ParseResult parse, CancellationToken cancel)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var progress = new ScanProgressPrinter(error);
        PartitionRepairResult result;
        try
        {
            result = PartitionRepairer.Repair(parse.GetValue(s_sourceArgument)!, parse.GetValue(s_intoOption)!, parse.GetValue(s_tableOption), progress, cancel);
        }
        catch (PartitionRepairRefusedException e)
        {
            progress.Finish();
            error.WriteLine($"vrescue: repair refused ({e.Code}): {e.Message}");
            return e.Code == "REPAIR_NOTHING_PROPOSED" ? ExitCodes.NotRecognised : ExitCodes.Usage;
        }

        progress.Finish();
        if (parse.GetValue(VRescueApp.JsonOption))
        {
            Json.Write(output, result);
        }
        else
        {
            PartitionsRenderer.Write(output, result);
        }

        return ExitCodes.Ok;
    }
}
