// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using System.Text;

namespace VRescue.Guard.Kernel;

/// <summary>
/// Reads the kernel log ring from /dev/kmsg without blocking, from the oldest record still held. Read directly
/// rather than through journald or syslog files, because those live on /var, which may be the filesystem that
/// went read-only (node-problem-detector PR #221).
/// </summary>
public static class KmsgReader
{
    /// <summary>The live kernel log device.</summary>
    public const string DevicePath = "/dev/kmsg";

    // Each read() returns exactly one record; the kernel refuses buffers smaller than the record
    // (printk.c devkmsg_read: EINVAL), and records are at most PRINTKRB_RECORD_MAX (1024) text plus the
    // dictionary, so 16 KiB is always enough.
    private const int RecordBufferBytes = 16 * 1024;

    // Bound for a ring that keeps filling while we read (log_buf_len is at most a few MiB).
    private const int MaxRecords = 500_000;

    private const int O_RDONLY = 0;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int EPIPE = 32;

    /// <summary>
    /// All records from <paramref name="path"/>: a device under /dev is read record by record until EAGAIN
    /// (EPIPE, records overwritten while reading, is skipped as the ABI says); any other path is a
    /// capture file (records one per line) and is parsed as text. Throws <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot be opened.
    /// </summary>
    public static IReadOnlyList<KmsgRecord> ReadAll(string path = DevicePath)
    {
        if (!path.StartsWith("/dev/", StringComparison.Ordinal))
        {
            return KmsgParser.ParseCapture(File.ReadAllText(path));
        }

        var fd = Open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var message = $"{path}: cannot open ({Marshal.GetPInvokeErrorMessage(errno)})";
            throw errno is 1 or 13 ? new UnauthorizedAccessException(message) : new IOException(message);
        }

        try
        {
            var records = new List<KmsgRecord>();
            var buffer = new byte[RecordBufferBytes];
            while (records.Count < MaxRecords)
            {
                var n = Read(fd, buffer, buffer.Length);
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno is EINTR or EPIPE)
                    {
                        continue;
                    }

                    if (errno == EAGAIN)
                    {
                        break;
                    }

                    throw new IOException($"{path}: read failed ({Marshal.GetPInvokeErrorMessage(errno)})");
                }

                if (n == 0)
                {
                    break;
                }

                if (KmsgParser.ParseRecord(Encoding.UTF8.GetString(buffer, 0, (int)n)) is { } r)
                {
                    records.Add(r);
                }
            }

            return records;
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
