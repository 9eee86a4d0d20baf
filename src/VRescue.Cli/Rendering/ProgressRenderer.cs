// SPDX-License-Identifier: MIT
using System.Diagnostics;
using VRescue.Recovery.Export;

namespace VRescue.Cli.Rendering;

/// <summary>
/// A one-line progress bar with throughput on stderr, redrawn at most 10 times a second. Only used when stderr is a
/// terminal and --json is off, so logs and machine output stay clean.
/// </summary>
public sealed class ProgressRenderer(TextWriter error) : IProgress<ExportProgress>
{
    private const int BarWidth = 30;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _lock = new();
    private Guid _vdi;
    private long _vdiStartTicks;
    private long _lastDrawTicks = -1;
    private int _lastWidth;

    /// <summary>True when progress should be drawn: stderr is a terminal and the output is for humans.</summary>
    public static bool ShouldDraw(TextWriter error, bool json) => !json && ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;

    public void Report(ExportProgress p)
    {
        lock (_lock)
        {
            var now = _clock.ElapsedTicks;
            if (p.VdiUuid != _vdi)
            {
                _vdi = p.VdiUuid;
                _vdiStartTicks = now;
            }

            var done = p.DoneBytes >= p.TotalBytes;
            if (!done && _lastDrawTicks >= 0 && now - _lastDrawTicks < Stopwatch.Frequency / 10)
            {
                return;
            }

            _lastDrawTicks = now;
            var seconds = Math.Max(1e-3, (now - _vdiStartTicks) / (double)Stopwatch.Frequency);
            var fraction = p.TotalBytes == 0 ? 1 : (double)p.DoneBytes / p.TotalBytes;
            var filled = (int)(fraction * BarWidth);
            var name = p.NameLabel is { Length: > 0 } n ? n.Length > 24 ? n[..23] + "…" : n : p.VdiUuid.ToString()[..8];
            var line = $"[{p.VdiIndex + 1}/{p.VdiCount}] {name} [{new string('#', filled)}{new string('.', BarWidth - filled)}] " +
                $"{fraction * 100,3:0}% {Units.Size(p.DoneBytes)}/{Units.Size(p.TotalBytes)} {Units.Size((long)(p.DoneBytes / seconds))}/s";
            error.Write("\r" + line.PadRight(_lastWidth));
            _lastWidth = line.Length;
            if (done)
            {
                error.WriteLine();
                _lastWidth = 0;
            }
        }
    }
}
