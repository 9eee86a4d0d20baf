// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using System.Text;

namespace VRescue.Guard.Kernel;

/// <summary>
/// Follows /dev/kmsg from "now" (SEEK_END, Documentation/ABI/testing/dev-kmsg) without blocking: <see cref="Wait"/>
/// polls the descriptor and drains the new records, and says whether any matched a storage rule, so the daemon
/// checks at once instead of at the next interval.
/// </summary>
public sealed class KmsgWatcher : IDisposable
{
    private const int O_RDONLY = 0;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int SEEK_END = 2;
    private const short POLLIN = 1;
    private const int EINTR = 4;
    private const int EPIPE = 32;

    private readonly int _fd;
    private readonly byte[] _buffer = new byte[16 * 1024];

    private KmsgWatcher(int fd) => _fd = fd;

    /// <summary>Opens the device positioned after the last record. Throws <see cref="IOException"/> when it cannot.</summary>
    public static KmsgWatcher Open(string path = KmsgReader.DevicePath)
    {
        var fd = OpenNative(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"{path}: cannot open ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
        }

        _ = LSeek(fd, 0, SEEK_END);
        return new KmsgWatcher(fd);
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for new records and reads all that arrived; returns the storage
    /// events among them (empty on timeout or when nothing matched).
    /// </summary>
    public IReadOnlyList<KernelEvent> Wait(TimeSpan timeout)
    {
        var pfd = new PollFd { Fd = _fd, Events = POLLIN };
        var ready = Poll(ref pfd, 1, (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue));
        if (ready <= 0)
        {
            return [];
        }

        var events = new List<KernelEvent>();
        for (var i = 0; i < 10_000; i++)
        {
            var n = Read(_fd, _buffer, _buffer.Length);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is EINTR or EPIPE)
                {
                    continue;
                }

                break; // EAGAIN: drained
            }

            if (n == 0)
            {
                break;
            }

            if (KmsgParser.ParseRecord(Encoding.UTF8.GetString(_buffer, 0, (int)n)) is { } r && KernelLogMatcher.MatchOne(r) is { IsMarker: false } e)
            {
                events.Add(e);
            }
        }

        return events;
    }

    public void Dispose() => _ = Close(_fd);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int OpenNative(string path, int flags);

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long LSeek(int fd, long offset, int whence);

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern int Poll(ref PollFd fds, nuint count, int timeoutMs);

    [DllImport("libc", EntryPoint = "read", SetLastError = true)]
    private static extern nint Read(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    /// <summary>Writes one line to the kernel log (the spool's last resort). Failures are ignored: there is nowhere left to report them.</summary>
    public static void WriteLine(string message, string path = KmsgReader.DevicePath)
    {
        try
        {
            // "<4>" = KERN_WARNING; one write() is one record (printk.c devkmsg_write), at most ~1 KiB is kept.
            var bytes = Encoding.UTF8.GetBytes("<4>" + message.Replace('\n', ' ').Replace('\r', ' '));
            using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
            f.Write(bytes, 0, Math.Min(bytes.Length, 1000));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

}
