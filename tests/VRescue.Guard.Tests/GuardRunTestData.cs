// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Alerts;
using VRescue.Guard.Check;
using VRescue.Guard.Filesystems;

namespace VRescue.Guard.Tests;

/// <summary>Reports built directly, for the daemon's logic (the checker has its own tests on captured input).</summary>
internal static class GuardRunTestData
{
    public static MountReport Mount(string mountPoint, MountState state, Severity? severity = null, uint ext4Errors = 0, string device = "loop7") => new()
    {
        MountPoint = mountPoint,
        Source = "/dev/" + device,
        FsType = "ext4",
        DeviceNumber = "7:7",
        DeviceName = device,
        MountOptions = ["rw"],
        SuperOptions = ["rw"],
        State = state,
        Problems = severity is { } s ? [new Finding("guard.test", s, $"{mountPoint}: test problem")] : [],
        Ext4Sysfs = ext4Errors > 0
            ? new Ext4ErrorRecord("sysfs", ext4Errors, new Ext4ErrorPoint(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), "trigger_test_error", 129, 0, 0, 5), null)
            : null,
        KernelLines = severity is null ? [] : ["[  12.000000] EXT4-fs error (device loop7): trigger_test_error:129: comm bash: test"],
    };

    public static GuardReport Report(params MountReport[] mounts) => new()
    {
        Status = mounts.Max(m => m.Severity) switch { Severity.Error => GuardStatus.Critical, Severity.Warning => GuardStatus.Warning, _ => GuardStatus.Ok },
        MountInfoSource = "test",
        Mounts = mounts,
    };

    public static GuardAlert Alert(string mountPoint = "/srv/db", string id = "0123456789abcdef") => new()
    {
        Id = id,
        Kind = GuardAlertKind.Problem,
        Time = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero),
        Host = "guest1",
        Severity = "critical",
        MountPoint = mountPoint,
        Source = "/dev/loop7",
        Device = "loop7",
        FsType = "ext4",
        State = MountState.EmergencyReadOnly,
        Summary = $"{mountPoint} (loop7) emergency read-only",
        FirstError = "2026-11-22 09:59:58Z in trigger_test_error:129 (EFSCORRUPTED)",
        KernelLines = ["[  12.000000] EXT4-fs error (device loop7): trigger_test_error:129: comm bash: test"],
    };
}
