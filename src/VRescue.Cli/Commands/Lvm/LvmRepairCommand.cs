// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Recovery.Lvm;
using VRescue.Storage.Lvm;

namespace VRescue.Cli.Commands.Lvm;

/// <summary>
/// `vrescue lvm repair SOURCE... --vg NAME --seqno N [--crc C] --into TARGET...`: writes label, mda headers and the
/// chosen version into a copy of each source (one --into per SOURCE, in order). Never writes a source.
/// </summary>
public sealed class LvmRepairCommand : Command
{
    private readonly Argument<string[]> _sources = LvmCommand.Sources(ArgumentArity.OneOrMore);
    private readonly Option<string[]> _backup = LvmCommand.BackupOption();
    private readonly Option<string> _vg = LvmCommand.VgOption();
    private readonly Option<long> _seqno = LvmCommand.SeqnoOption();
    private readonly Option<string?> _crc = LvmCommand.CrcOption();
    private readonly Option<string[]> _into = new("--into")
    {
        Description = "Target per SOURCE, in order: an existing copy, or a new file VRescue creates as a sparse copy first",
        Required = true,
        Arity = ArgumentArity.OneOrMore,
    };

    public LvmRepairCommand()
        : base("repair", "Make a copy of the PV(s) carry an older metadata version: label, mda headers and text (never LV data)")
    {
        Arguments.Add(_sources);
        Options.Add(_backup);
        Options.Add(_vg);
        Options.Add(_seqno);
        Options.Add(_crc);
        Options.Add(_into);
        SetAction(Execute);
    }

    private int Execute(ParseResult parse)
    {
        var paths = parse.GetValue(_sources) ?? [];
        var targets = parse.GetValue(_into) ?? [];
        var backups = parse.GetValue(_backup) ?? [];
        var json = parse.GetValue(VRescueApp.JsonOption);
        var stdout = parse.InvocationConfiguration.Output;
        var stderr = parse.InvocationConfiguration.Error;
        if (targets.Length != paths.Length)
        {
            stderr.WriteLine($"vrescue: give one --into target per SOURCE ({paths.Length} sources, {targets.Length} targets)");
            return ExitCodes.Usage;
        }

        foreach (var t in targets)
        {
            VRescue.Storage.TargetGuard.EnsureNotSource(t, paths);
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

            List<LvmRepairPlan> plans;
            try
            {
                plans = LvmRestore.PlanRepair(history, vg, version!);
            }
            catch (LvmRestoreRefusedException e)
            {
                stderr.WriteLine("vrescue: " + e.Message);
                return ExitCodes.Damaged;
            }

            var results = new List<object>();
            foreach (var plan in plans)
            {
                var target = targets[plan.DiskIndex];
                var copied = LvmTargetWriter.PrepareTarget(sources[plan.DiskIndex], target, paths,
                    (done, total) => progress.Copy($"copy to {target}", done, total));
                LvmTargetWriter.Apply(target, plan.Writes);
                results.Add(new
                {
                    source = sources[plan.DiskIndex].Name,
                    target = Path.GetFullPath(target),
                    createdCopy = copied,
                    pvId = plan.PvId,
                    writes = plan.Writes.Select(w => new { offsetBytes = w.OffsetBytes, lengthBytes = w.Bytes.Length, what = w.What }).ToList(),
                    notes = plan.Notes,
                });
                if (!json)
                {
                    stdout.WriteLine($"{target}: {(copied ? "created as a sparse copy of " + sources[plan.DiskIndex].Name + ", then " : "")}wrote PV {plan.PvId}:");
                    foreach (var w in plan.Writes)
                    {
                        stdout.WriteLine($"  {w.Bytes.Length,7} bytes at {w.OffsetBytes}: {w.What}");
                    }

                    foreach (var n in plan.Notes)
                    {
                        stdout.WriteLine($"  note: {n}");
                    }
                }
            }

            if (json)
            {
                Json.Write(stdout, new { vgName = vg.VgName, vgId = vg.VgId, seqno = version!.Seqno, crc = version.CrcText, newSeqno = plans[0].NewSeqno, targets = results });
            }
            else
            {
                stdout.WriteLine($"VG {vg.VgName} seqno {version!.Seqno} (crc {version.CrcText}) is now committed as seqno {plans[0].NewSeqno} on the target(s); check with pvs/vgs/lvs/vgck on the copy");
            }

            return ExitCodes.Ok;
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }
}
