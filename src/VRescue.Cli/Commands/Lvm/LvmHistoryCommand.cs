// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Lvm;

namespace VRescue.Cli.Commands.Lvm;

/// <summary>`vrescue lvm history SOURCE... [--backup PATH...] [--json]`: every VG text version, as a timeline per VG.</summary>
public sealed class LvmHistoryCommand : Command
{
    private readonly Argument<string[]> _sources = LvmCommand.Sources(ArgumentArity.ZeroOrMore);
    private readonly Option<string[]> _backup = LvmCommand.BackupOption();

    public LvmHistoryCommand()
        : base("history", "List every version of the VG metadata found in the PVs' metadata rings and in backup files, with what changed")
    {
        Arguments.Add(_sources);
        Options.Add(_backup);
        SetAction(Execute);
    }

    private int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(_sources) ?? [];
        var backups = parse.GetValue(_backup) ?? [];
        var json = parse.GetValue(VRescueApp.JsonOption);
        var output = parse.InvocationConfiguration.Output;
        if (paths.Length == 0 && backups.Length == 0)
        {
            parse.InvocationConfiguration.Error.WriteLine("vrescue: give at least one SOURCE or --backup PATH");
            return ExitCodes.Usage;
        }

        var sources = LvmCommand.Open(paths);
        try
        {
            using var progress = TerminalProgress.For(parse.InvocationConfiguration.Error, json);
            var history = LvmHistoryReader.Read(sources, backups, progress);
            if (json)
            {
                Json.Write(output, LvmHistoryJson.From(history));
            }
            else
            {
                LvmHistoryRenderer.Write(output, history);
            }

            return history.Vgs.Count == 0 ? ExitCodes.NotRecognised : ExitCodes.Ok;
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }
}
