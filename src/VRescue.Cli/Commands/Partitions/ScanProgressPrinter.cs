// SPDX-License-Identifier: MIT
using VRescue.Cli.Rendering;
using VRescue.Storage.Scanning;

namespace VRescue.Cli.Commands.Partitions;

/// <summary>Draws scan progress on one terminal line; silent when stderr is not a terminal (tests, pipes, --json capture).</summary>
internal sealed class ScanProgressPrinter(TextWriter stderr) : IProgress<DiskScanProgress>
{
    private readonly bool _enabled = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
    private bool _drawn;

    public void Report(DiskScanProgress p)
    {
        if (!_enabled)
        {
            return;
        }

        var percent = p.TotalBytes > 0 ? 100.0 * p.ScannedBytes / p.TotalBytes : 100;
        var rate = p.Elapsed.TotalSeconds > 0 ? p.ScannedBytes / p.Elapsed.TotalSeconds : 0;
        stderr.Write(FormattableString.Invariant(
            $"\rscanning {percent,5:0.0}%  {Units.Size(p.ScannedBytes)} of {Units.Size(p.TotalBytes)}  {Units.Size((long)rate)}/s  {p.Hits} signature(s)   "));
        _drawn = true;
    }

    /// <summary>Ends the progress line so the report starts on a clean line.</summary>
    public void Finish()
    {
        if (_drawn)
        {
            stderr.Write("\r" + new string(' ', 79) + "\r");
        }
    }
}
