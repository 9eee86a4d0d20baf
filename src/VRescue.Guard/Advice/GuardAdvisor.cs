// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Guard.Check;
using VRescue.Guard.Kernel;
using VRescue.Guard.Sysfs;

namespace VRescue.Guard.Advice;

/// <summary>One disk's SCSI command timeout against the floor a hypervisor failover needs.</summary>
public sealed record DiskTimeout(string Disk, int? TimeoutSeconds, int FloorSeconds)
{
    /// <summary>A SCSI disk whose timeout is shorter than the floor: a path failover becomes an I/O error.</summary>
    public bool BelowFloor => TimeoutSeconds is { } t && t < FloorSeconds;
}

/// <summary>
/// Likely cause and fix for what the check found. Never suggests <c>mount -o remount,rw</c>: on 6.15+ it is refused
/// or a no-op for emergency_ro, and on older kernels it writes to a filesystem the kernel stopped for a reason
/// (brief §2.4, §7).
/// </summary>
public static class GuardAdvisor
{
    /// <summary>Default place for the udev rule (administrator rules directory, udev(7)).</summary>
    public const string DefaultUdevRulePath = "/etc/udev/rules.d/99-vrescue-scsi-timeout.rules";

    /// <summary>Advice for one mount, given the kernel events attached to it.</summary>
    public static IReadOnlyList<string> ForMount(MountReport m, IReadOnlyList<KernelEvent> events, SysfsBlockDevices sysfs, GuardRules rules)
    {
        var advice = new List<string>();
        var dev = "/dev/" + (m.DeviceName ?? Path.GetFileName(m.Source));
        var stopped = m.State is MountState.Shutdown or MountState.EmergencyReadOnly or MountState.ReadOnly;
        if (stopped)
        {
            var repair = m.FsType switch
            {
                "xfs" => $"xfs_repair {dev}",
                "btrfs" => $"btrfs check --readonly {dev} (and btrfs device stats {m.MountPoint} before unmounting)",
                _ when m.FsType.StartsWith("ext", StringComparison.Ordinal) => $"e2fsck -f {dev}",
                _ => $"the filesystem's fsck on {dev}",
            };
            advice.Add($"Writes to {m.MountPoint} are stopped until it is unmounted and checked: stop the services using it, umount {m.MountPoint}, {repair}, mount it again (or reboot). Do not 'mount -o remount,rw': it is refused or has no effect on current kernels and risks corruption on old ones.");
        }

        if (m.State == MountState.Hung)
        {
            advice.Add($"The write probe got no answer within {rules.ProbeDeadline.TotalSeconds:0} s: I/O is queued, not failed (multipath queue_if_no_path, long SCSI timeouts, XFS retrying). Check the hypervisor's storage, 'dmsetup status' and 'blocked for more than' kernel lines.");
        }

        var underlying = m.DeviceName is null ? [] : sysfs.Underlying(m.DeviceName);
        var diskErrors = events.Where(e => !e.IsFilesystemLevel).ToList();
        if (diskErrors.Count > 0)
        {
            advice.Add($"The storage underneath returned I/O errors ({string.Join(", ", diskErrors.Select(e => e.Device ?? e.ScsiAddress ?? e.DeviceNumber).Distinct())}): a lost or failing storage path (path failover, all-paths-down, array fault). Compare the time with the hypervisor's storage log.");
        }
        else if (stopped || m.State == MountState.Errors)
        {
            if (events.Any(e => e.Kind is KernelEventKind.FilesystemIoError))
            {
                advice.Add("The filesystem reported write errors from its device; check the device and its backing store.");
            }
            else if (m.Problems.Any(p => p.Code.StartsWith("guard.ext4.", StringComparison.Ordinal) || p.Code == "guard.kernel.fs-error"))
            {
                advice.Add("No I/O errors from the disk are in the kernel log: the filesystem found an inconsistency (or an error was injected by hand); run fsck at the next opportunity.");
            }
        }

        if (stopped || diskErrors.Count > 0)
        {
            foreach (var disk in underlying.Where(d => sysfs.DiskOf(d) is null))
            {
                var t = new DiskTimeout(disk, sysfs.ScsiTimeoutSeconds(disk), rules.DiskTimeoutFloorSeconds);
                if (t.BelowFloor)
                {
                    advice.Add($"SCSI command timeout of {disk} is {t.TimeoutSeconds} s, below the {t.FloorSeconds} s a VMware path failover needs (KB 1009465; Azure 300 s): 'vrescue guard advise --write-udev-rule {DefaultUdevRulePath}' makes it stick.");
                }

                if (IsMultipath(sysfs, disk))
                {
                    advice.Add($"{disk} is a dm-multipath map: give no_path_retry a bounded count (e.g. 12 x polling_interval 5 s = 60 s) so a failover queues briefly; 'fail' errors at once and 'queue' hangs forever (multipath.conf(5)).");
                }
            }
        }

        if (m.ErrorsBehaviour == "continue" && m.Problems.Any(p => p.Code == "guard.ext4.errors-recorded"))
        {
            advice.Add($"errors=continue keeps a damaged filesystem writable: schedule e2fsck -f {dev}; 'tune2fs -e remount-ro {dev}' stops writes at the next error instead.");
        }

        if (m.Xfs is { RetriesForever: true } && (stopped || m.State is MountState.Hung or MountState.Errors))
        {
            advice.Add("XFS retries failed metadata writes forever (error/metadata/EIO max_retries = -1): a lost path makes it hang rather than shut down.");
        }

        return advice;
    }

    /// <summary>SCSI timeouts of every whole disk that has one (virtio-blk, xen-blkfront, loop and zram have none).</summary>
    public static IReadOnlyList<DiskTimeout> DiskTimeouts(SysfsBlockDevices sysfs, int floorSeconds) =>
        sysfs.Disks().Select(d => new DiskTimeout(d, sysfs.ScsiTimeoutSeconds(d), floorSeconds)).Where(t => t.TimeoutSeconds is not null).ToArray();

    /// <summary>
    /// A udev rule that sets the SCSI command timeout when a disk appears or changes, like open-vm-tools'
    /// 99-vmware-scsi-udev.rules but for every SCSI disk type (0 disk, 7 optical memory, 14 RBC), so RDM/passthrough
    /// LUNs that report the array's vendor are covered too.
    /// </summary>
    public static string UdevRule(int timeoutSeconds)
    {
        var sb = new StringBuilder();
        sb.Append("# Written by 'vrescue guard advise'. SCSI command timeout long enough for a hypervisor path failover\n");
        sb.Append("# (VMware KB 1009465: 180 s; Azure: 300 s), so the guest waits instead of failing I/O and going read-only.\n");
        sb.Append("# Apply now: udevadm control --reload && udevadm trigger --action=change --subsystem-match=scsi\n");
        sb.Append("ACTION==\"add|change\", SUBSYSTEM==\"scsi\", ENV{DEVTYPE}==\"scsi_device\", ATTR{type}==\"0|7|14\", ATTR{timeout}=\"")
          .Append(timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append("\"\n");
        return sb.ToString();
    }

    /// <summary>Writes <see cref="UdevRule"/> to an explicit path through a temporary file and a rename.</summary>
    public static void WriteUdevRule(string path, int timeoutSeconds)
    {
        var full = Path.GetFullPath(path);
        var tmp = full + ".tmp" + Environment.ProcessId;
        File.WriteAllText(tmp, UdevRule(timeoutSeconds));
        File.Move(tmp, full, overwrite: true);
    }

    private static bool IsMultipath(SysfsBlockDevices sysfs, string name) =>
        SysfsBlockDevices.ReadText(Path.Combine(sysfs.Root, "block", name, "dm", "uuid"))?.StartsWith("mpath-", StringComparison.Ordinal) == true;
}
