// SPDX-License-Identifier: MIT
using VRescue.Guard.Sysfs;

namespace VRescue.Guard.Filesystems;

/// <summary>
/// XFS error handling for one mounted device, from /sys/fs/xfs/NAME/error/ (Documentation/admin-guide/xfs.rst,
/// "Error handling"). XFS exports no shutdown flag there: a shutdown shows only in the kernel log and as EIO
/// from a probe. -1 means retry forever, so on path loss metadata I/O hangs instead of failing.
/// </summary>
public sealed record XfsErrorConfig(int? MetadataEioMaxRetries, int? MetadataEioRetryTimeoutSeconds, bool? FailAtUnmount)
{
    /// <summary>True when metadata EIO is retried without limit (the default).</summary>
    public bool RetriesForever => MetadataEioMaxRetries == -1 && MetadataEioRetryTimeoutSeconds == -1;

    /// <summary>Reads the error directory, or null when sysfs has none for <paramref name="name"/>.</summary>
    public static XfsErrorConfig? FromSysfs(string sysfsRoot, string name)
    {
        var dir = Path.Combine(sysfsRoot, "fs", "xfs", name, "error");
        if (!Directory.Exists(dir))
        {
            return null;
        }

        var eio = Path.Combine(dir, "metadata", "EIO");
        return new XfsErrorConfig(
            SysfsBlockDevices.ReadInt(Path.Combine(eio, "max_retries")),
            SysfsBlockDevices.ReadInt(Path.Combine(eio, "retry_timeout_seconds")),
            SysfsBlockDevices.ReadInt(Path.Combine(dir, "fail_at_unmount")) is { } f ? f != 0 : null);
    }
}
