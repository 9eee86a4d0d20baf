// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Alerts;
using VRescue.Guard.Check;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

public sealed class AlertTrackerTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    private static (IReadOnlyList<GuardAlert> Alerts, Dictionary<string, MountMemory> Next) Step(GuardReport r, Dictionary<string, MountMemory> before, int minutes, TimeSpan? reminder = null) =>
        AlertTracker.Step(r, before, Severity.Warning, reminder ?? TimeSpan.FromHours(4), "guest1", s_t0.AddMinutes(minutes));

    [Fact]
    public void Alerts_on_transitions_only_then_reminds_then_sends_the_all_clear()
    {
        var (a0, m0) = Step(Report(Mount("/srv/db", MountState.Writable)), [], 0);
        Assert.Empty(a0);

        var (a1, m1) = Step(Report(Mount("/srv/db", MountState.Errors, Severity.Warning, ext4Errors: 1)), m0, 1);
        var problem = Assert.Single(a1);
        Assert.Equal(GuardAlertKind.Problem, problem.Kind);
        Assert.Equal("warning", problem.Severity);
        Assert.Equal("loop7", problem.Device);
        Assert.Contains("trigger_test_error", problem.FirstError, StringComparison.Ordinal);

        var (a2, m2) = Step(Report(Mount("/srv/db", MountState.Errors, Severity.Warning, ext4Errors: 1)), m1, 2);
        Assert.Empty(a2);

        var (a3, m3) = Step(Report(Mount("/srv/db", MountState.Errors, Severity.Warning, ext4Errors: 2)), m2, 3);
        Assert.Equal(GuardAlertKind.Worse, Assert.Single(a3).Kind);

        var (a4, m4) = Step(Report(Mount("/srv/db", MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 2)), m3, 4);
        var worse = Assert.Single(a4);
        Assert.Equal(GuardAlertKind.Worse, worse.Kind);
        Assert.Equal("critical", worse.Severity);
        Assert.Equal(MountState.Errors, worse.PreviousState);
        Assert.Equal(s_t0.AddMinutes(1), worse.ProblemSince);

        var (a5, m5) = Step(Report(Mount("/srv/db", MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 2)), m4, 4 + 239);
        Assert.Empty(a5);
        var (a6, m6) = Step(Report(Mount("/srv/db", MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 2)), m5, 4 + 240);
        Assert.Equal(GuardAlertKind.Reminder, Assert.Single(a6).Kind);

        var (a7, _) = Step(Report(Mount("/srv/db", MountState.Writable)), m6, 300);
        var clear = Assert.Single(a7);
        Assert.Equal(GuardAlertKind.AllClear, clear.Kind);
        Assert.Equal("ok", clear.Severity);
        Assert.StartsWith("all clear: /srv/db (loop7) is writable again", clear.Summary, StringComparison.Ordinal);
        Assert.Equal(5, new[] { a1, a3, a4, a6, a7 }.SelectMany(a => a).Select(a => a.Id).Distinct().Count());
    }

    [Fact]
    public void A_problem_present_at_first_sight_alerts_and_an_unmounted_problem_mount_clears()
    {
        var (a1, m1) = Step(Report(Mount("/a", MountState.Shutdown, Severity.Error), Mount("/b", MountState.Writable)), [], 0);
        Assert.Equal("/a", Assert.Single(a1).MountPoint);

        var (a2, m2) = Step(Report(Mount("/b", MountState.Writable)), m1, 1);
        var clear = Assert.Single(a2);
        Assert.Equal(GuardAlertKind.AllClear, clear.Kind);
        Assert.Contains("no longer mounted", clear.Summary, StringComparison.Ordinal);
        Assert.False(m2.ContainsKey("/a"));
    }

    [Fact]
    public void Intended_read_only_and_info_findings_are_not_alerts_and_reminder_zero_never_reminds()
    {
        var (a1, m1) = Step(Report(Mount("/media/cd", MountState.IntendedReadOnly), Mount("/x", MountState.Writable, Severity.Info)), [], 0);
        Assert.Empty(a1);
        var (a2, m2) = Step(Report(Mount("/x", MountState.Shutdown, Severity.Error)), m1, 1, TimeSpan.Zero);
        Assert.Single(a2);
        Assert.Empty(Step(Report(Mount("/x", MountState.Shutdown, Severity.Error)), m2, 10_000, TimeSpan.Zero).Alerts);
    }

    [Fact]
    public void Min_severity_critical_ignores_warnings()
    {
        var r = Report(Mount("/x", MountState.Errors, Severity.Warning, ext4Errors: 3));
        Assert.Empty(AlertTracker.Step(r, new Dictionary<string, MountMemory>(), Severity.Error, TimeSpan.Zero, "h", s_t0).Alerts);
    }
}
