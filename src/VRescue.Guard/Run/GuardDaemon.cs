// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Guard.Alerts;
using VRescue.Guard.Channels;
using VRescue.Guard.Check;
using VRescue.Guard.Kernel;
using VRescue.Guard.Metrics;

namespace VRescue.Guard.Run;

/// <summary>What one cycle did.</summary>
public sealed record GuardCycleResult(GuardReport Report, IReadOnlyList<GuardAlert> Alerts, int Delivered, int Spooled, int Pending, string? StateDir);

/// <summary>
/// <c>vrescue guard run</c>: check, turn transitions into alerts, deliver them (spooling what fails), retry the spool
/// with backoff, publish metrics, save state. <see cref="CycleAsync"/> is one such cycle (<c>--once</c>);
/// <see cref="RunAsync"/> repeats it every interval and whenever the kernel logs a storage error.
/// </summary>
public sealed class GuardDaemon : IAsyncDisposable
{
    // Follow-up lines ("Aborting journal", "Remounting read-only") come within milliseconds of the first error;
    // wait this long after a matching line so one cycle sees the whole event.
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_slice = TimeSpan.FromMilliseconds(500);

    private readonly GuardSettings _settings;
    private readonly IReadOnlyList<IAlertChannel> _channels;
    private readonly TextWriter _log;
    private readonly Func<GuardReport> _check;
    private readonly GuardStore _store;
    private readonly MetricsHttpServer? _http;
    private Dictionary<string, MountMemory> _memory;
    private readonly List<string> _delivered;

    public GuardDaemon(GuardSettings settings, IReadOnlyList<IAlertChannel> channels, TextWriter log,
        Func<GuardReport>? check = null, Action<string>? kernelLogLine = null)
    {
        _settings = settings;
        _channels = channels;
        _log = log;
        _check = check ?? (() => new GuardChecker(settings.Rules, settings.Inputs).Run());
        _store = new GuardStore(settings.StateDirs, kernelLogLine ?? (line => KmsgWatcher.WriteLine(line)));
        var state = _store.LoadState();
        _memory = state.Mounts.ToDictionary(m => m.MountPoint, StringComparer.Ordinal);
        _delivered = state.Delivered;
        _store.LoadSpool(_delivered.ToHashSet(StringComparer.Ordinal));
        if (settings.MetricsListen is { } listen)
        {
            _http = new MetricsHttpServer(listen);
        }
    }

    /// <summary>The /metrics endpoint, when configured.</summary>
    public MetricsHttpServer? MetricsServer => _http;

    /// <summary>Deliveries waiting for a channel.</summary>
    public IReadOnlyList<SpooledDelivery> Pending => _store.Pending;

    public async Task<GuardCycleResult> CycleAsync(DateTimeOffset now, CancellationToken cancel)
    {
        var watch = Stopwatch.StartNew();
        GuardReport report;
        try
        {
            report = _check();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without a mount table there is nothing to compare: keep the previous state, alert nobody, say UNKNOWN.
            _log.WriteLine($"vrescue guard: check could not run: {e.Message}");
            report = new GuardReport { Status = GuardStatus.Unknown, MountInfoSource = "", Mounts = [], Problems = [new("guard.check.failed", Severity.Error, e.Message)] };
        }

        var checkSeconds = watch.Elapsed.TotalSeconds;
        IReadOnlyList<GuardAlert> alerts = [];
        if (report.Status != GuardStatus.Unknown)
        {
            (alerts, _memory) = AlertTracker.Step(report, _memory, _settings.MinSeverity, _settings.Reminder, _settings.Hostname, now);
        }

        bool Avoid(string dir) => IsOnBrokenMount(dir, report);
        var due = _store.Pending.Where(d => d.NextAttempt <= now).ToList();
        foreach (var a in alerts)
        {
            _log.WriteLine($"vrescue guard: alert {a.Id} {a.Kind.ToString().ToLowerInvariant()} {a.Severity}: {AlertText.OneLine(a.Summary)}");
            due.AddRange(_channels.Select(c => new SpooledDelivery { Channel = c.Name, Alert = a, NextAttempt = now }));
        }

        var delivered = 0;
        var spooled = 0;
        var down = new Dictionary<string, SpooledDelivery>(StringComparer.Ordinal);
        foreach (var d in due)
        {
            var channel = _channels.FirstOrDefault(c => c.Name == d.Channel);
            if (channel is null)
            {
                _log.WriteLine($"vrescue guard: spooled alert {d.Alert.Id} is for channel '{d.Channel}', which is no longer configured; dropped");
                _store.Remove(d);
                continue;
            }

            if (down.TryGetValue(d.Channel, out var failed))
            {
                // Keep order per channel: once it failed this cycle, later alerts wait with the same schedule.
                _store.Put(d with { NextAttempt = failed.NextAttempt, LastError = failed.LastError }, Avoid);
                spooled++;
                continue;
            }

            try
            {
                await channel.DeliverAsync(d.Alert, cancel).ConfigureAwait(false);
                _store.Remove(d);
                _delivered.Add(d.Key);
                delivered++;
                _log.WriteLine($"vrescue guard: alert {d.Alert.Id} -> {d.Channel}: delivered{(d.Attempts > 0 ? $" after {d.Attempts} failed attempt(s)" : "")}");
            }
            catch (AlertDeliveryException e)
            {
                var attempts = d.Attempts + 1;
                var backoff = TimeSpan.FromTicks(Math.Min(_settings.RetryMax.Ticks, _settings.RetryInitial.Ticks * (1L << Math.Min(attempts - 1, 20))));
                var next = d with { Attempts = attempts, NextAttempt = now + backoff, LastError = e.Message };
                var where = _store.Put(next, Avoid);
                down[d.Channel] = next;
                spooled++;
                _log.WriteLine($"vrescue guard: alert {d.Alert.Id} -> {d.Channel}: failed ({AlertText.OneLine(e.Message)}); spooled in {where}, attempt {attempts}, next try after {backoff.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
            }
        }

        var saved = _store.SaveState(new GuardStateDocument { SavedAt = now, Mounts = _memory.Values.ToList(), Delivered = _delivered }, Avoid);
        if (!saved)
        {
            _log.WriteLine($"vrescue guard: no state directory took the state file ({string.Join(", ", _settings.StateDirs)}); keeping it in memory");
        }

        PublishMetrics(report, now, checkSeconds);
        return new GuardCycleResult(report, alerts, delivered, spooled, _store.Pending.Count, _store.StateDir);
    }

    /// <summary>Cycles until <paramref name="cancel"/> (SIGTERM); between cycles, wakes early on kernel storage lines.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        KmsgWatcher? watcher = null;
        if (_settings.WakeOnKernelLog && _settings.Inputs.KmsgPath is { } kmsg)
        {
            try
            {
                watcher = KmsgWatcher.Open(kmsg);
            }
            catch (IOException e)
            {
                _log.WriteLine($"vrescue guard: not following the kernel log ({e.Message}); checking every {_settings.Interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s only");
            }
        }

        using (watcher)
        {
            SystemdNotify.Send("READY=1");
            while (!cancel.IsCancellationRequested)
            {
                var result = await CycleAsync(DateTimeOffset.UtcNow, CancellationToken.None).ConfigureAwait(false);
                _log.WriteLine($"vrescue guard: {NagiosOutput.StatusWord(result.Report.Status)}, {result.Report.Mounts.Count} watched, {result.Alerts.Count} alert(s), {result.Pending} spooled");
                SystemdNotify.Send("WATCHDOG=1");
                await WaitAsync(watcher, cancel).ConfigureAwait(false);
            }

            SystemdNotify.Send("STOPPING=1");
        }
    }

    private async Task WaitAsync(KmsgWatcher? watcher, CancellationToken cancel)
    {
        var until = DateTimeOffset.UtcNow + _settings.Interval;
        var lastPing = DateTimeOffset.UtcNow;
        while (!cancel.IsCancellationRequested && DateTimeOffset.UtcNow < until)
        {
            var slice = Min(s_slice, until - DateTimeOffset.UtcNow);
            if (watcher is not null)
            {
                var events = await Task.Run(() => watcher.Wait(slice), CancellationToken.None).ConfigureAwait(false);
                if (events.Count > 0)
                {
                    _log.WriteLine($"vrescue guard: kernel: {AlertText.OneLine(events[0].Record.Message)}; checking now");
                    until = Min(until, DateTimeOffset.UtcNow + s_settle);
                }
            }
            else
            {
                try
                {
                    await Task.Delay(slice, cancel).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (DateTimeOffset.UtcNow - lastPing > TimeSpan.FromSeconds(5))
            {
                SystemdNotify.Send("WATCHDOG=1");
                lastPing = DateTimeOffset.UtcNow;
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private void PublishMetrics(GuardReport report, DateTimeOffset now, double checkSeconds)
    {
        if (_settings.TextfileDir is null && _http is null)
        {
            return;
        }

        var text = GuardMetrics.Render(report, new GuardMetricsExtra(now, checkSeconds, _store.Pending.Count, _store.InMemoryCount));
        _http?.Update(text);
        if (_settings.TextfileDir is { } dir)
        {
            try
            {
                GuardMetrics.WriteTextfile(dir, text);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.WriteLine($"vrescue guard: metrics textfile not written to {dir}: {e.Message}");
            }
        }
    }

    /// <summary>True when <paramref name="dir"/> lies on a watched mount the check found read-only, shut down or hung.</summary>
    internal static bool IsOnBrokenMount(string dir, GuardReport report)
    {
        var full = Path.GetFullPath(dir);
        var mount = report.Mounts
            .Where(m => full == m.MountPoint || full.StartsWith(m.MountPoint.TrimEnd('/') + "/", StringComparison.Ordinal))
            .MaxBy(m => m.MountPoint.Length);
        return mount is not null && mount.State >= MountState.Hung;
    }

    public async ValueTask DisposeAsync()
    {
        if (_http is not null)
        {
            await _http.DisposeAsync().ConfigureAwait(false);
        }
    }
}
