// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Globalization;
using VRescue.Cli.Rendering;
using VRescue.Guard.Check;

namespace VRescue.Cli.Commands.Guard;

/// <summary>
/// `vrescue guard check [--json] [--nagios] [--write-probe]`: one check of every watched mount. Exit codes follow the
/// Nagios plugin API in every output mode: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could not run).
/// </summary>
public sealed class GuardCheckCommand : Command
{
    private static readonly Option<bool> s_nagios = new("--nagios") { Description = "Nagios/Icinga plugin output: one status line with perfdata, then one line per problem" };
    private static readonly Option<bool> s_writeProbe = new("--write-probe") { Description = "Also try an O_TMPFILE write on each watched writable mount (leaves nothing behind)" };
    private static readonly Option<string[]> s_mounts = new("--mount") { Description = "Check only this mount point (repeatable)", AllowMultipleArgumentsPerToken = false };
    private static readonly Option<string?> s_mountInfo = new("--mountinfo") { Description = "Mount table to read (default /proc/1/mountinfo, else /proc/self/mountinfo)" };
    private static readonly Option<string?> s_kmsg = new("--kmsg") { Description = "Kernel log: /dev/kmsg (default) or a capture file with one kmsg record per line; 'none' skips it" };
    private static readonly Option<string> s_fstab = new("--fstab") { Description = "fstab used to tell intended read-only mounts", DefaultValueFactory = _ => "/etc/fstab" };
    private static readonly Option<string> s_sysfs = new("--sysfs") { Description = "sysfs root", DefaultValueFactory = _ => "/sys" };
    private static readonly Option<string> s_proc = new("--proc") { Description = "procfs root (for /proc/fs/ext4/*/options)", DefaultValueFactory = _ => "/proc" };
    private static readonly Option<string> s_dev = new("--dev") { Description = "Directory of device nodes for superblock reads", DefaultValueFactory = _ => "/dev" };
    private static readonly Option<bool> s_noSuperblock = new("--no-superblock") { Description = "Do not read ext2/3/4 superblocks from the devices" };
    private static readonly Option<double> s_probeTimeout = new("--probe-timeout") { Description = "Seconds a write probe may take before the mount counts as hung", DefaultValueFactory = _ => 10 };
    private static readonly Option<int> s_timeoutFloor = new("--timeout-floor") { Description = "SCSI disk timeout (s) below which advice warns (VMware 180, Azure 300)", DefaultValueFactory = _ => 180 };

    public GuardCheckCommand()
        : base("check", "Check every mount once: read-only or shut-down filesystems, recorded errors, kernel lines, advice")
    {
        Options.Add(s_nagios);
        Options.Add(s_writeProbe);
        Options.Add(s_mounts);
        Options.Add(s_mountInfo);
        Options.Add(s_kmsg);
        Options.Add(s_fstab);
        Options.Add(s_sysfs);
        Options.Add(s_proc);
        Options.Add(s_dev);
        Options.Add(s_noSuperblock);
        Options.Add(s_probeTimeout);
        Options.Add(s_timeoutFloor);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        var nagios = parse.GetValue(s_nagios);
        var kmsg = parse.GetValue(s_kmsg) ?? "/dev/kmsg";
        var rules = new GuardRules
        {
            OnlyMountPoints = parse.GetValue(s_mounts) ?? [],
            ProbeDeadline = TimeSpan.FromSeconds(parse.GetValue(s_probeTimeout)),
            DiskTimeoutFloorSeconds = parse.GetValue(s_timeoutFloor),
        };
        var inputs = new GuardInputs
        {
            MountInfoPath = parse.GetValue(s_mountInfo),
            KmsgPath = kmsg == "none" ? null : kmsg,
            FstabPath = parse.GetValue(s_fstab)!,
            SysfsRoot = parse.GetValue(s_sysfs)!,
            ProcRoot = parse.GetValue(s_proc)!,
            DevRoot = parse.GetValue(s_dev)!,
            ReadSuperblocks = !parse.GetValue(s_noSuperblock),
            WriteProbe = parse.GetValue(s_writeProbe),
        };

        GuardReport report;
        try
        {
            report = new GuardChecker(rules, inputs).Run();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Plugin API: a check that cannot run is UNKNOWN (3), with the reason on the status line.
            if (nagios)
            {
                output.Write(NagiosOutput.Unknown(e.Message));
            }
            else
            {
                parse.InvocationConfiguration.Error.WriteLine("vrescue: " + e.Message);
            }

            return (int)GuardStatus.Unknown;
        }

        if (parse.GetValue(VRescueApp.JsonOption))
        {
            Json.Write(output, report);
        }
        else if (nagios)
        {
            output.Write(NagiosOutput.Format(report));
        }
        else
        {
            GuardCheckRenderer.Write(output, report);
        }

        return (int)report.Status;
    }

    internal static string Seconds(double s) => s.ToString("0.###", CultureInfo.InvariantCulture);
}
