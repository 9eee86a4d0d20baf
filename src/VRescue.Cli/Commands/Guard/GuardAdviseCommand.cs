// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Rendering;
using VRescue.Guard.Advice;
using VRescue.Guard.Sysfs;

namespace VRescue.Cli.Commands.Guard;

/// <summary>
/// `vrescue guard advise [--write-udev-rule PATH] [--timeout SECONDS]`: SCSI disk timeouts against the hypervisor's
/// failover time, and a udev rule that makes the timeout stick. Writes only to the explicit PATH.
/// Exit 0 when every SCSI disk meets the floor (or the rule was written), 1 when one is below it.
/// </summary>
public sealed class GuardAdviseCommand : Command
{
    private static readonly Option<string?> s_writeRule = new("--write-udev-rule") { Description = $"Write the udev rule to this path (e.g. {GuardAdvisor.DefaultUdevRulePath})" };
    private static readonly Option<int> s_timeout = new("--timeout") { Description = "Timeout in seconds the disks need (VMware 180, Azure 300)", DefaultValueFactory = _ => 180 };
    private static readonly Option<string> s_sysfs = new("--sysfs") { Description = "sysfs root", DefaultValueFactory = _ => "/sys" };

    public GuardAdviseCommand()
        : base("advise", "Show SCSI disk timeouts against the hypervisor's failover time; optionally write the udev rule that fixes them")
    {
        Options.Add(s_writeRule);
        Options.Add(s_timeout);
        Options.Add(s_sysfs);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        var floor = parse.GetValue(s_timeout);
        if (floor is < 1 or > 3600)
        {
            parse.InvocationConfiguration.Error.WriteLine("vrescue: --timeout must be between 1 and 3600 seconds");
            return ExitCodes.Usage;
        }

        var disks = GuardAdvisor.DiskTimeouts(new SysfsBlockDevices(parse.GetValue(s_sysfs)!), floor);
        var rulePath = parse.GetValue(s_writeRule);
        if (rulePath is not null)
        {
            GuardAdvisor.WriteUdevRule(rulePath, floor);
        }

        if (parse.GetValue(VRescueApp.JsonOption))
        {
            Json.Write(output, new { floorSeconds = floor, disks, udevRule = GuardAdvisor.UdevRule(floor), writtenTo = rulePath is null ? null : Path.GetFullPath(rulePath) });
        }
        else
        {
            output.WriteLine($"SCSI command timeouts (need >= {floor} s to ride out a hypervisor path failover; VMware KB 1009465):");
            if (disks.Count == 0)
            {
                output.WriteLine("  no SCSI disks (virtio-blk, xen-blkfront, loop and NVMe disks have no device/timeout; I/O waits instead of failing)");
            }

            foreach (var d in disks)
            {
                output.WriteLine($"  {d.Disk,-10} {d.TimeoutSeconds,5} s  {(d.BelowFloor ? "TOO SHORT" : "ok")}");
            }

            output.WriteLine();
            output.WriteLine("Also: ext2/3/4 errors=remount-ro stops writes at the first error (errors=continue hides it); in-guest dm-multipath");
            output.WriteLine("should use a bounded no_path_retry (e.g. 12), not 'fail' (errors at once) or 'queue' (hangs forever).");
            output.WriteLine();
            if (rulePath is not null)
            {
                output.WriteLine($"Wrote {Path.GetFullPath(rulePath)}. Apply now: udevadm control --reload && udevadm trigger --action=change --subsystem-match=scsi");
            }
            else
            {
                output.WriteLine($"udev rule that makes the timeout stick (write it with --write-udev-rule {GuardAdvisor.DefaultUdevRulePath}):");
                output.Write(GuardAdvisor.UdevRule(floor));
            }
        }

        return rulePath is null && disks.Any(d => d.BelowFloor) ? ExitCodes.Warnings : ExitCodes.Ok;
    }
}
