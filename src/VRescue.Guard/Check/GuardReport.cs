// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Filesystems;
using VRescue.Guard.Probe;

namespace VRescue.Guard.Check;

/// <summary>Overall result with Nagios/Icinga plugin semantics (plugin API: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).</summary>
public enum GuardStatus
{
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

/// <summary>A mount's condition, worst first in <see cref="GuardChecker"/>'s ordering.</summary>
public enum MountState
{
    /// <summary>Nothing wrong seen.</summary>
    Writable,

    /// <summary>Read-only on purpose: per-mount ro (bind, fstab ro), or a read-only filesystem type.</summary>
    IntendedReadOnly,

    /// <summary>Writable, but the filesystem or its disk reported errors.</summary>
    Errors,

    /// <summary>Per-mount ro although fstab lists the mount writable.</summary>
    ReadOnlyAgainstFstab,

    /// <summary>No answer from the write probe before the deadline.</summary>
    Hung,

    /// <summary>The superblock went ro under a rw mount (error remount on kernels before 6.12, btrfs forced ro).</summary>
    ReadOnly,

    /// <summary>ext4 emergency_ro (kernel 6.15+): mount table says rw, every write gets EROFS.</summary>
    EmergencyReadOnly,

    /// <summary>Shut down: ext4 <c>shutdown</c>, XFS forced shutdown, aborted journal; reads may fail too.</summary>
    Shutdown,
}

/// <summary>One watched mount and everything known about it.</summary>
public sealed record MountReport
{
    public required string MountPoint { get; init; }
    public required string Source { get; init; }
    public required string FsType { get; init; }
    public required string DeviceNumber { get; init; }

    /// <summary>Kernel block device name (sda1, dm-3, loop0) when known.</summary>
    public string? DeviceName { get; init; }

    public required IReadOnlyList<string> MountOptions { get; init; }
    public required IReadOnlyList<string> SuperOptions { get; init; }
    public MountState State { get; init; }

    /// <summary>Worst problem severity, or null when there is none.</summary>
    public Severity? Severity => Problems.Count == 0 ? null : Problems.Max(p => p.Severity);

    /// <summary>Problems with stable codes (guard.mount.*, guard.ext4.*, guard.kernel.*, guard.probe.*).</summary>
    public IReadOnlyList<Finding> Problems { get; init; } = [];

    /// <summary>ext2/3/4 error behaviour in effect (continue, remount-ro, panic) when known.</summary>
    public string? ErrorsBehaviour { get; init; }

    /// <summary>Live ext4 counters from /sys/fs/ext4/NAME.</summary>
    public Ext4ErrorRecord? Ext4Sysfs { get; init; }

    /// <summary>The on-disk superblock's record (dumpe2fs -h view).</summary>
    public Ext4ErrorRecord? Ext4Superblock { get; init; }

    /// <summary>Why the superblock could not be read, when it could not.</summary>
    public string? SuperblockError { get; init; }

    public XfsErrorConfig? Xfs { get; init; }
    public WriteProbeResult? Probe { get; init; }

    /// <summary>Matching kernel lines since this filesystem was mounted: the most recent filesystem and disk lines, in log order.</summary>
    public IReadOnlyList<string> KernelLines { get; init; } = [];

    /// <summary>How many kernel lines matched in total.</summary>
    public int KernelLineCount { get; init; }

    /// <summary>Likely cause and fix, one sentence each.</summary>
    public IReadOnlyList<string> Advice { get; init; } = [];
}

/// <summary>Result of one <see cref="GuardChecker"/> run.</summary>
public sealed record GuardReport
{
    public GuardStatus Status { get; init; }

    /// <summary>Where the mount table came from.</summary>
    public required string MountInfoSource { get; init; }

    /// <summary>Watched mounts, in mount-table order.</summary>
    public required IReadOnlyList<MountReport> Mounts { get; init; }

    /// <summary>Entries skipped as pseudo filesystems, ignored prefixes or outside --mount.</summary>
    public int IgnoredMountCount { get; init; }

    /// <summary>Problems not tied to one mount (hung tasks, unreadable kernel log, unparsable mountinfo lines).</summary>
    public IReadOnlyList<Finding> Problems { get; init; } = [];

    /// <summary>Matching kernel lines about devices that are not watched mounts (most recent first capped).</summary>
    public IReadOnlyList<string> OtherKernelLines { get; init; } = [];

    /// <summary>Sum of ext4 errors_count (or superblock error count) over watched mounts.</summary>
    public long Ext4ErrorCount => Mounts.Sum(m => (long)(m.Ext4Sysfs?.ErrorCount ?? m.Ext4Superblock?.ErrorCount ?? 0));
}
