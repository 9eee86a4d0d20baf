// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Check;
using VRescue.Guard.Filesystems;

namespace VRescue.Cli.Commands.Guard;

/// <summary>Human output of `guard check`: problem mounts in full, the others one line each.</summary>
internal static class GuardCheckRenderer
{
    public static void Write(TextWriter o, GuardReport r)
    {
        var critical = r.Mounts.Count(m => m.Severity == Severity.Error);
        var warning = r.Mounts.Count(m => m.Severity == Severity.Warning);
        o.WriteLine($"GUARD {NagiosOutput.StatusWord(r.Status)}: {critical} critical, {warning} warning, {r.Mounts.Count} watched, {r.IgnoredMountCount} ignored (mount table {r.MountInfoSource})");
        foreach (var p in r.Problems)
        {
            o.WriteLine($"  {Word(p.Severity)} {p.Code}: {p.Message}");
        }

        foreach (var m in r.Mounts.Where(m => m.Severity >= Severity.Warning))
        {
            o.WriteLine();
            o.WriteLine($"{Show(m.MountPoint)}  {m.FsType}  {m.Source} ({m.DeviceName ?? "?"} {m.DeviceNumber})  {NagiosOutput.StateWord(m.State).ToUpperInvariant()}");
            o.WriteLine($"  options: {string.Join(',', m.MountOptions)} | superblock: {string.Join(',', m.SuperOptions)}");
            if (m.ErrorsBehaviour is not null)
            {
                o.WriteLine($"  errors={m.ErrorsBehaviour}");
            }

            Ext4(o, m.Ext4Sysfs);
            Ext4(o, m.Ext4Superblock);
            if (m.SuperblockError is not null)
            {
                o.WriteLine($"  superblock not read: {m.SuperblockError}");
            }

            if (m.Probe is { } probe)
            {
                o.WriteLine($"  write probe: {probe.Outcome} ({probe.Message}, {GuardCheckCommand.Seconds(probe.DurationMilliseconds / 1000)} s)");
            }

            foreach (var p in m.Problems)
            {
                o.WriteLine($"  {Word(p.Severity)} {p.Code}: {p.Message}");
            }

            if (m.KernelLineCount > 0)
            {
                o.WriteLine($"  kernel ({m.KernelLineCount} matching line(s) since mount, {m.KernelLines.Count} shown):");
                foreach (var line in m.KernelLines)
                {
                    o.WriteLine("    " + line);
                }
            }

            foreach (var a in m.Advice)
            {
                o.WriteLine("  advice: " + a);
            }
        }

        var quiet = r.Mounts.Where(m => m.Severity is null or Severity.Info).ToList();
        if (quiet.Count > 0)
        {
            o.WriteLine();
            foreach (var m in quiet)
            {
                o.WriteLine($"ok  {Show(m.MountPoint)}  {m.FsType}  {NagiosOutput.StateWord(m.State)}");
            }
        }
    }

    private static void Ext4(TextWriter o, Ext4ErrorRecord? rec)
    {
        if (rec is null)
        {
            return;
        }

        var state = rec.State is { } s ? $", state {s}" : "";
        o.WriteLine($"  ext4 {rec.Source}: error count {rec.ErrorCount}{state}; first error {GuardChecker.Describe(rec.FirstError)}; last error {GuardChecker.Describe(rec.LastError)}");
    }

    // A decoded mount point may hold a newline; show it escaped so one mount stays on one line.
    private static string Show(string path) => path.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);

    private static string Word(Severity s) => s switch { Severity.Error => "CRITICAL", Severity.Warning => "WARNING", _ => "note" };
}
