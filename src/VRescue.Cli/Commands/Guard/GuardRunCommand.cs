// SPDX-License-Identifier: MIT
using System.CommandLine;
using System.Runtime.InteropServices;
using VRescue.Guard.Channels;
using VRescue.Guard.Check;
using VRescue.Guard.Run;

namespace VRescue.Cli.Commands.Guard;

/// <summary>
/// `vrescue guard run --config FILE [--once]`: the watchdog. Checks every interval and when the kernel logs a storage
/// error, alerts on transitions, reminds, sends the all-clear, spools what it cannot deliver. `--once` runs one
/// cycle (systemd timer, tests). SIGTERM/SIGINT finish the current cycle and exit 0. Exit 64 on a bad config.
/// </summary>
public sealed class GuardRunCommand : Command
{
    private static readonly Option<string> s_config = new("--config") { Description = "YAML configuration (packaging/guard/guard.example.yaml)", Required = true };
    private static readonly Option<bool> s_once = new("--once") { Description = "Run one cycle (check, alerts, spool retry, metrics, state) and exit" };

    public GuardRunCommand()
        : base("run", "Watch continuously: alert on transitions through mail, webhook and syslog; publish Prometheus metrics")
    {
        Options.Add(s_config);
        Options.Add(s_once);
        SetAction(ExecuteAsync);
    }

    private static async Task<int> ExecuteAsync(ParseResult parse, CancellationToken cancel)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        GuardSettings settings;
        IReadOnlyList<IAlertChannel> channels;
        try
        {
            settings = GuardConfigLoader.Load(parse.GetValue(s_config)!);
            channels = settings.Channels.Select(AlertChannels.Create).ToList();
        }
        catch (GuardConfigException e)
        {
            await error.WriteLineAsync("vrescue: " + e.Message);
            return ExitCodes.Usage;
        }

        GuardDaemon daemon;
        try
        {
            daemon = new GuardDaemon(settings, channels, output);
        }
        catch (Exception e) when (e is FormatException or System.Net.Sockets.SocketException)
        {
            await error.WriteLineAsync($"vrescue: metrics listen {settings.MetricsListen}: {e.Message}");
            return ExitCodes.Usage;
        }

        await using (daemon)
        {
            if (daemon.MetricsServer is { } http)
            {
                await output.WriteLineAsync($"vrescue guard: metrics at http://{http.EndPoint}/metrics");
            }

            if (parse.GetValue(s_once))
            {
                var r = await daemon.CycleAsync(DateTimeOffset.UtcNow, cancel);
                var bad = r.Report.Mounts.Where(m => m.Severity >= settings.MinSeverity).Select(m => $"{m.MountPoint.Replace("\n", "\\n", StringComparison.Ordinal)} {NagiosOutput.StateWord(m.State)}");
                await output.WriteLineAsync($"GUARD {NagiosOutput.StatusWord(r.Report.Status)}: {r.Report.Mounts.Count} watched{string.Concat(bad.Select(b => ", " + b))}; " +
                    $"{r.Alerts.Count} new alert(s), {r.Delivered} delivered, {r.Pending} waiting in the spool; state in {r.StateDir ?? "memory only"}");
                return ExitCodes.Ok;
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            void OnSignal(PosixSignalContext ctx)
            {
                ctx.Cancel = true;
                output.WriteLine($"vrescue guard: {ctx.Signal}, stopping after this cycle");
                stop.Cancel();
            }

            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            await output.WriteLineAsync($"vrescue guard: watching every {settings.Interval.TotalSeconds} s{(settings.WakeOnKernelLog ? " and on kernel storage errors" : "")}, {channels.Count} channel(s)");
            await daemon.RunAsync(stop.Token);
            await output.WriteLineAsync("vrescue guard: stopped");
            return ExitCodes.Ok;
        }
    }
}
