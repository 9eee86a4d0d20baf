// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace VRescue.Guard.Probe;

/// <summary>What a write probe found.</summary>
public enum WriteProbeOutcome
{
    /// <summary>An unnamed temporary file was created and closed: the filesystem takes writes.</summary>
    Writable,

    /// <summary>EROFS: the kernel refuses writes (ext4 emergency_ro, superblock ro).</summary>
    ReadOnly,

    /// <summary>EIO: the filesystem is shut down (XFS, ext4 shutdown) or the device fails.</summary>
    IoError,

    /// <summary>No answer before the deadline: I/O hangs (queueing multipath, long SCSI timeouts, XFS retrying).</summary>
    TimedOut,

    /// <summary>The filesystem has no O_TMPFILE (EOPNOTSUPP, EISDIR, EINVAL): nothing learned.</summary>
    Unsupported,

    /// <summary>Any other errno (EACCES, ENOSPC, EDQUOT...): reported, not taken as read-only.</summary>
    OtherError,
}

/// <summary>Result of one probe; <see cref="Errno"/> is 0 on success or timeout.</summary>
public sealed record WriteProbeResult(WriteProbeOutcome Outcome, int Errno, string Message, double DurationMilliseconds);

/// <summary>
/// Asks the kernel for a write without leaving anything behind: <c>open(dir, O_TMPFILE | O_WRONLY)</c> creates an
/// unnamed inode that vanishes on close (open(2), "O_TMPFILE", Linux 3.11; ext2/3/4, XFS, btrfs, tmpfs support it).
/// Checks what the mount table cannot show: ext4 emergency_ro on 6.12-6.14 and XFS shutdown (brief §0).
/// Runs on a background thread with a deadline, so a hung filesystem cannot hang the caller; that thread is then
/// abandoned (a task in D state cannot be cancelled).
/// </summary>
public static class WriteProbe
{
    // include/uapi/asm-generic/fcntl.h: __O_TMPFILE 020000000, O_DIRECTORY 0200000 (x86, x86_64, generic);
    // arch/arm64 and arm use O_DIRECTORY 040000. O_TMPFILE is defined as (__O_TMPFILE | O_DIRECTORY).
    private const int OTmpfileBit = 0x400000;
    private const int OWrOnly = 0x1;
    private const int OCloexec = 0x80000;
    private const int EIO = 5;
    private const int EISDIR = 21;
    private const int EINVAL = 22;
    private const int EROFS = 30;
    private const int EOPNOTSUPP = 95;

    private static int ODirectory => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    /// <summary>Probes the directory <paramref name="mountPoint"/>, waiting at most <paramref name="deadline"/>.</summary>
    public static WriteProbeResult Run(string mountPoint, TimeSpan deadline)
    {
        var watch = Stopwatch.StartNew();
        WriteProbeResult? result = null;
        var thread = new Thread(() => result = ProbeNow(mountPoint, watch)) { IsBackground = true, Name = "vrescue-guard-probe" };
        thread.Start();
        if (!thread.Join(deadline))
        {
            return new WriteProbeResult(WriteProbeOutcome.TimedOut, 0, $"no answer within {deadline.TotalSeconds:0.#} s", watch.Elapsed.TotalMilliseconds);
        }

        return result!;
    }

    private static WriteProbeResult ProbeNow(string dir, Stopwatch watch)
    {
        var fd = Open(dir, OTmpfileBit | ODirectory | OWrOnly | OCloexec, Convert.ToUInt32("600", 8));
        var errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        if (fd >= 0)
        {
            _ = Close(fd);
            return new WriteProbeResult(WriteProbeOutcome.Writable, 0, "write accepted (O_TMPFILE)", watch.Elapsed.TotalMilliseconds);
        }

        var outcome = errno switch
        {
            EROFS => WriteProbeOutcome.ReadOnly,
            EIO => WriteProbeOutcome.IoError,
            EOPNOTSUPP or EISDIR or EINVAL => WriteProbeOutcome.Unsupported,
            _ => WriteProbeOutcome.OtherError,
        };
        return new WriteProbeResult(outcome, errno, Marshal.GetPInvokeErrorMessage(errno), watch.Elapsed.TotalMilliseconds);
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags, uint mode);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
