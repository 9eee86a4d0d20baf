// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Alerts;
using VRescue.Guard.Channels;
using VRescue.Guard.Check;
using VRescue.Guard.Run;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

/// <summary>Delivery, spool and restart behaviour of whole cycles, with a channel that can be switched off.</summary>
public sealed class GuardDaemonSpoolTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-daemon-");
    private readonly DateTimeOffset _t0 = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    public void Dispose() => _dir.Delete(recursive: true);

    private sealed class SwitchChannel(string name) : IAlertChannel
    {
        public bool Up { get; set; }
        public List<GuardAlert> Received { get; } = [];
        public string Name => name;

        public Task DeliverAsync(GuardAlert alert, CancellationToken cancel)
        {
            if (!Up)
            {
                throw new AlertDeliveryException($"{name}: connection refused");
            }

            Received.Add(alert);
            return Task.CompletedTask;
        }
    }

    private GuardSettings Settings(params string[] stateDirs) => GuardConfigLoader.Validate(new GuardConfigFile
    {
        StateDirs = [.. stateDirs],
        Hostname = "guest1",
        Retry = new GuardRetryConfig { Initial = "30s", Max = "5m" },
        Metrics = new GuardMetricsConfig { TextfileDir = _dir.FullName },
    });

    private string Blocked => Path.Combine(_dir.FullName, "a-file", "spool-under-a-file");

    [Fact]
    public async Task Alert_raised_while_the_channel_is_down_is_spooled_on_the_first_writable_dir_and_delivered_once_when_it_is_back()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "a-file"), "not a directory");
        var good = Path.Combine(_dir.FullName, "state");
        var mail = new SwitchChannel("mail");
        var hook = new SwitchChannel("hook") { Up = true };
        var report = Report(Mount("/srv/db", MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 1));
        var log = new StringWriter();
        await using (var d = new GuardDaemon(Settings(Blocked, good), [mail, hook], log, () => report))
        {
            var r1 = await d.CycleAsync(_t0, default);
            Assert.Single(r1.Alerts);
            Assert.Single(hook.Received);
            Assert.Equal(good, r1.StateDir);
            var spooled = Assert.Single(Directory.GetFiles(Path.Combine(good, "spool")));
            Assert.EndsWith($"{r1.Alerts[0].Id}.mail.json", spooled, StringComparison.Ordinal);
            Assert.Contains("vrescue_guard_alerts_spooled 1\n", File.ReadAllText(Path.Combine(_dir.FullName, "vrescue_guard.prom")), StringComparison.Ordinal);

            // Backoff: not retried before 30 s, even when up.
            mail.Up = true;
            Assert.Equal(0, (await d.CycleAsync(_t0.AddSeconds(10), default)).Delivered);
            Assert.Empty(mail.Received);
        }

        // Restart: the state says the problem was alerted; the spool still holds the mail delivery.
        await using (var d = new GuardDaemon(Settings(Blocked, good), [mail, hook], log, () => report))
        {
            var r = await d.CycleAsync(_t0.AddSeconds(31), default);
            Assert.Empty(r.Alerts);
            Assert.Equal(1, r.Delivered);
            var got = Assert.Single(mail.Received);
            Assert.Equal(hook.Received[0].Id, got.Id);
            Assert.Empty(Directory.GetFiles(Path.Combine(good, "spool")));
            Assert.Equal(0, (await d.CycleAsync(_t0.AddMinutes(10), default)).Delivered);
        }

        await using (var d = new GuardDaemon(Settings(Blocked, good), [mail, hook], log, () => report))
        {
            Assert.Equal(0, (await d.CycleAsync(_t0.AddMinutes(11), default)).Delivered);
        }

        Assert.Single(mail.Received);
        Assert.Single(hook.Received);
        Assert.Contains("delivered after 1 failed attempt(s)", log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Problem_then_all_clear_while_down_arrive_in_order_when_the_channel_returns()
    {
        var mail = new SwitchChannel("mail");
        var report = Report(Mount("/srv/db", MountState.Shutdown, Severity.Error));
        await using var d = new GuardDaemon(Settings(Path.Combine(_dir.FullName, "s")), [mail], TextWriter.Null, () => report);
        await d.CycleAsync(_t0, default);
        report = Report(Mount("/srv/db", MountState.Writable));
        await d.CycleAsync(_t0.AddSeconds(5), default);
        Assert.Equal(2, d.Pending.Count);
        mail.Up = true;
        await d.CycleAsync(_t0.AddMinutes(1), default);
        Assert.Equal([GuardAlertKind.Problem, GuardAlertKind.AllClear], mail.Received.Select(a => a.Kind));
        Assert.Empty(d.Pending);
    }

    [Fact]
    public async Task With_no_writable_directory_alerts_stay_in_memory_and_a_line_goes_to_the_kernel_log()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "a-file"), "x");
        var kmsg = new List<string>();
        var mail = new SwitchChannel("mail");
        var report = Report(Mount("/srv/db", MountState.Shutdown, Severity.Error));
        await using var d = new GuardDaemon(Settings(Blocked), [mail], TextWriter.Null, () => report, kmsg.Add);
        var r = await d.CycleAsync(_t0, default);
        Assert.Null(r.StateDir);
        Assert.Equal(1, r.Pending);
        Assert.StartsWith("vrescue-guard: alert not delivered by mail and no spool directory writable, kept in memory: CRITICAL /srv/db (loop7) shut down", Assert.Single(kmsg), StringComparison.Ordinal);
        Assert.Contains("vrescue_guard_alerts_spooled_in_memory 1\n", File.ReadAllText(Path.Combine(_dir.FullName, "vrescue_guard.prom")), StringComparison.Ordinal);

        mail.Up = true;
        await d.CycleAsync(_t0.AddMinutes(1), default);
        Assert.Single(mail.Received);
        Assert.Single(kmsg);
    }

    [Fact]
    public async Task A_state_directory_on_the_broken_mount_is_skipped_without_writing_to_it()
    {
        var onBroken = Directory.CreateDirectory(Path.Combine(_dir.FullName, "broken", "state")).FullName;
        var fallback = Path.Combine(_dir.FullName, "run");
        var report = Report(Mount(Path.Combine(_dir.FullName, "broken"), MountState.EmergencyReadOnly, Severity.Error), Mount(_dir.FullName, MountState.Writable));
        await using var d = new GuardDaemon(Settings(onBroken, fallback), [new SwitchChannel("mail")], TextWriter.Null, () => report);
        var r = await d.CycleAsync(_t0, default);
        Assert.Equal(fallback, r.StateDir);
        Assert.Empty(Directory.GetFileSystemEntries(onBroken));
    }

    [Fact]
    public async Task An_unreadable_mount_table_is_unknown_and_does_not_clear_anything()
    {
        var mail = new SwitchChannel("mail") { Up = true };
        var fail = false;
        var report = Report(Mount("/srv/db", MountState.Shutdown, Severity.Error));
        GuardReport Check() => fail ? throw new IOException("/proc/1/mountinfo: gone") : report;
        await using var d = new GuardDaemon(Settings(Path.Combine(_dir.FullName, "s")), [mail], TextWriter.Null, Check);
        await d.CycleAsync(_t0, default);
        fail = true;
        var r = await d.CycleAsync(_t0.AddMinutes(1), default);
        Assert.Equal(GuardStatus.Unknown, r.Report.Status);
        Assert.Empty(r.Alerts);
        Assert.Contains("vrescue_guard_status 3\n", File.ReadAllText(Path.Combine(_dir.FullName, "vrescue_guard.prom")), StringComparison.Ordinal);
        fail = false;
        Assert.Empty((await d.CycleAsync(_t0.AddMinutes(2), default)).Alerts);
        Assert.Single(mail.Received);
    }
}
