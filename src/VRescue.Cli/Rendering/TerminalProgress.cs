// SPDX-License-Identifier: MIT
using VRescue.Storage.Lvm;

namespace VRescue.Cli.Rendering;

/// <summary>
/// A one-line progress display on a terminal's stderr, redrawn at most every 200 ms. Silent when stderr is
/// redirected, when --json is given, or when the command does not write to the process console.
/// </summary>
public sealed class TerminalProgress : IProgress<LvmScanProgress>, IDisposable
{
    private readonly TextWriter? _writer;
    private long _lastTicks;
    private bool _drawn;

    private TerminalProgress(TextWriter? writer) => _writer = writer;

    /// <summary>A progress line on <paramref name="stderr"/> when it is the console's stderr and that is a terminal.</summary>
    public static TerminalProgress For(TextWriter stderr, bool json) =>
        new(!json && ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected ? stderr : null);

    public void Report(LvmScanProgress value)
    {
        if (_writer is null)
        {
            return;
        }

        var now = Environment.TickCount64;
        if (now - _lastTicks < 200 && value.DoneBytes < value.TotalBytes)
        {
            return;
        }

        _lastTicks = now;
        var percent = value.TotalBytes > 0 ? Math.Min(100, value.DoneBytes * 100 / value.TotalBytes) : 100;
        _writer.Write($"\rscanning {value.SourceName}: {percent,3}% ({Units.Size(value.DoneBytes)} of {Units.Size(value.TotalBytes)})\u001b[K");
        _drawn = true;
    }

    /// <summary>A progress callback for a copy: bytes done of total.</summary>
    public void Copy(string what, long done, long total) => Report(new LvmScanProgress(what, done, total));

    public void Dispose()
    {
        if (_drawn)
        {
            _writer!.Write("\r\u001b[K");
        }
    }
}
