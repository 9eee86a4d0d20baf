// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Guard.Check;

/// <summary>
/// What counts as a problem. Defaults follow the brief (§7): pseudo filesystems are not watched, read-only media and
/// images are intended, per-mount <c>ro</c> is intended unless fstab says the mount should be writable.
/// </summary>
public sealed record GuardRules
{
    /// <summary>Not watched at all: kernel pseudo filesystems (node_exporter's default exclusion list, minus overlay).</summary>
    public IReadOnlySet<string> IgnoredFsTypes { get; init; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
        "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "procfs", "pstore", "rpc_pipefs", "securityfs", "selinuxfs",
        "sysfs", "tracefs", "ramfs",
    };

    /// <summary>Read-only by design (media, images, snaps): never an alarm, whatever the flags say.</summary>
    public IReadOnlySet<string> ReadOnlyFsTypes { get; init; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "iso9660", "udf", "squashfs", "erofs", "cramfs",
    };

    /// <summary>Mount points at or under these are not watched (container storage, systemd credentials, snaps).</summary>
    public IReadOnlyList<string> IgnoredMountPointPrefixes { get; init; } =
        ["/proc", "/sys", "/run/credentials", "/var/lib/docker", "/var/lib/containers/storage", "/snap"];

    /// <summary>Only these mount points are checked, when not empty (exact match after unescaping).</summary>
    public IReadOnlyList<string> OnlyMountPoints { get; init; } = [];

    /// <summary>Filesystem types the write probe may touch (all support O_TMPFILE).</summary>
    public IReadOnlySet<string> ProbeFsTypes { get; init; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs",
    };

    /// <summary>How long a write probe may take before the filesystem counts as hung.</summary>
    public TimeSpan ProbeDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A per-mount <c>ro</c> on a mount that fstab lists without <c>ro</c>: this severity (Info to silence).</summary>
    public Severity ReadOnlyAgainstFstabSeverity { get; init; } = Severity.Warning;

    /// <summary>"task blocked for more than N seconds" anywhere in the ring: this severity.</summary>
    public Severity HungTaskSeverity { get; init; } = Severity.Warning;

    /// <summary>Guest SCSI timeout the hypervisor needs to ride out a path failover (VMware: 180 s, KB 1009465).</summary>
    public int DiskTimeoutFloorSeconds { get; init; } = 180;

    /// <summary>Kernel lines kept per mount in the report: this many of the filesystem's own and of the disk's, most recent.</summary>
    public int KernelLinesPerMount { get; init; } = 10;

    /// <summary>True when the mount point is at or under one of <see cref="IgnoredMountPointPrefixes"/>.</summary>
    public bool IsIgnoredMountPoint(string mountPoint) =>
        IgnoredMountPointPrefixes.Any(p => mountPoint == p || mountPoint.StartsWith(p + "/", StringComparison.Ordinal));
}

/// <summary>
/// Where the check reads from. The defaults are the live system; tests point them at captured text and trees.
/// </summary>
public sealed record GuardInputs
{
    /// <summary>
    /// Mount table. Null: /proc/1/mountinfo (the host's view, outside any ProtectSystem= or container namespace,
    /// brief §5.3), falling back to /proc/self/mountinfo when hidepid or missing privileges hide it.
    /// </summary>
    public string? MountInfoPath { get; init; }

    /// <summary>fstab; a missing file means no fstab information.</summary>
    public string FstabPath { get; init; } = "/etc/fstab";

    /// <summary>Kernel log: /dev/kmsg, or a capture file with one kmsg record per line. Null skips the kernel log.</summary>
    public string? KmsgPath { get; init; } = "/dev/kmsg";

    /// <summary>sysfs root (/sys).</summary>
    public string SysfsRoot { get; init; } = "/sys";

    /// <summary>procfs root (/proc), for /proc/fs/ext4/NAME/options.</summary>
    public string ProcRoot { get; init; } = "/proc";

    /// <summary>Directory holding block device nodes for superblock reads (/dev).</summary>
    public string DevRoot { get; init; } = "/dev";

    /// <summary>Read ext2/3/4 superblocks from the devices (read-only, like dumpe2fs -h).</summary>
    public bool ReadSuperblocks { get; init; } = true;

    /// <summary>Run the O_TMPFILE write probe on watched, writable mounts.</summary>
    public bool WriteProbe { get; init; }
}
