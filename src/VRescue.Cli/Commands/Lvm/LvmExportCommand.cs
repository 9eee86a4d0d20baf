// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Lvm;
using VRescue.Storage;

namespace VRescue.Cli.Commands.Lvm;

/// <summary>`vrescue lvm export SOURCE... --vg NAME --seqno N [--crc C] -o FILE`: one version as a vgcfgrestore backup file.</summary>
public sealed class LvmExportCommand : Command
{
    private readonly Argument<string[]> _sources = LvmCommand.Sources(ArgumentArity.ZeroOrMore);
    private readonly Option<string[]> _backup = LvmCommand.BackupOption();
    private readonly Option<string> _vg = LvmCommand.VgOption();
    private readonly Option<long> _seqno = LvmCommand.SeqnoOption();
    private readonly Option<string?> _crc = LvmCommand.CrcOption();
    private readonly Option<string> _output = new("--output", "-o") { Description = "File to write (must not exist)", Required = true };

    public LvmExportCommand()
        : base("export", "Write one metadata version as a backup file that `vgcfgrestore -f FILE` accepts")
    {
        Arguments.Add(_sources);
        Options.Add(_backup);
        Options.Add(_vg);
        Options.Add(_seqno);
        Options.Add(_crc);
        Options.Add(_output);
        SetAction(Execute);
    }

    private int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(_sources) ?? [];
        var backups = parse.GetValue(_backup) ?? [];
        var output = parse.GetValue(_output)!;
        var json = parse.GetValue(VRescueApp.JsonOption);
        var stdout = parse.InvocationConfiguration.Output;
        var stderr = parse.InvocationConfiguration.Error;
        if (File.Exists(output) || Directory.Exists(output))
        {
            TargetGuard.EnsureNotSource(output, paths.Concat(backups));
            stderr.WriteLine($"vrescue: {output} exists; refusing to overwrite it");
            return ExitCodes.Usage;
        }

        var sources = LvmCommand.Open(paths);
        try
        {
            using var progress = TerminalProgress.For(stderr, json);
            var history = LvmHistoryReader.Read(sources, backups, progress);
            var (vg, version) = LvmCommandSupport.Select(history, parse.GetValue(_vg)!, parse.GetValue(_seqno), parse.GetValue(_crc), stderr, out var failure);
            if (vg is null)
            {
                return failure;
            }

            var collisions = LvmRestore.Collisions(vg, version!);
            File.WriteAllText(output, LvmRestore.BackupText(version!), new System.Text.UTF8Encoding(false));
            if (json)
            {
                Json.Write(stdout, new
                {
                    output = Path.GetFullPath(output),
                    vgName = vg.VgName,
                    vgId = vg.VgId,
                    seqno = version!.Seqno,
                    crc = version.CrcText,
                    lvNames = version.VolumeGroup.LogicalVolumes.Select(l => l.Name).ToList(),
                    collisions = collisions.Select(c => c.ToString()).ToList(),
                });
            }
            else
            {
                stdout.WriteLine($"wrote {output}: VG {vg.VgName} seqno {version!.Seqno} crc {version.CrcText}, {version.VolumeGroup.LogicalVolumes.Count} LVs");
                foreach (var c in collisions)
                {
                    stdout.WriteLine($"warning: {c}; restoring this version would expose overwritten data");
                }

                stdout.WriteLine($"restore onto a COPY of the PV(s) with: vgcfgrestore -f {output} {vg.VgName}");
            }

            return collisions.Count > 0 ? ExitCodes.Warnings : ExitCodes.Ok;
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }
}
