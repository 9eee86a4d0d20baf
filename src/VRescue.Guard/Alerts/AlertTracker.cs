// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Guard.Check;

namespace VRescue.Guard.Alerts;

/// <summary>What the daemon remembers about a mount between cycles (persisted in the state file).</summary>
public sealed record MountMemory
{
    public required string MountPoint { get; init; }
    public string? Device { get; init; }
    public MountState State { get; init; }

    /// <summary>Worst problem severity at the last cycle; null when fine.</summary>
    public Severity? Severity { get; init; }

    public long Ext4ErrorCount { get; init; }

    /// <summary>Start of the current problem episode; null when fine.</summary>
    public DateTimeOffset? ProblemSince { get; init; }

    /// <summary>Last alert sent about this mount (for reminders).</summary>
    public DateTimeOffset? LastAlert { get; init; }
}

/// <summary>
/// Turns successive check reports into alerts on transitions only: fine -> problem, problem -> worse,
/// problem -> fine (all-clear), plus reminders while a problem lasts. Pure: state in, state and alerts out.
/// </summary>
public static class AlertTracker
{
    /// <summary>Key for problems not tied to one mount (hung tasks anywhere in the kernel log).</summary>
    public const string SystemKey = "(system)";

    public static (IReadOnlyList<GuardAlert> Alerts, Dictionary<string, MountMemory> Next) Step(
        GuardReport report, IReadOnlyDictionary<string, MountMemory> previous, Severity minSeverity, TimeSpan reminder, string host, DateTimeOffset now)
    {
        var alerts = new List<GuardAlert>();
        var next = new Dictionary<string, MountMemory>(StringComparer.Ordinal);
        foreach (var m in report.Mounts)
        {
            var severity = m.Severity >= minSeverity ? m.Severity : null;
            var errors = (long)(m.Ext4Sysfs?.ErrorCount ?? m.Ext4Superblock?.ErrorCount ?? 0);
            var current = new MountMemory { MountPoint = m.MountPoint, Device = m.DeviceName ?? m.Source, State = m.State, Severity = severity, Ext4ErrorCount = errors };
            previous.TryGetValue(m.MountPoint, out var before);
            var (kind, memory) = Transition(before, current, reminder, now);
            next[m.MountPoint] = memory;
            if (kind is { } k)
            {
                alerts.Add(Build(k, m, before, memory, host, now));
            }
        }

        var system = report.Problems.Where(p => p.Severity >= minSeverity).ToList();
        var systemNow = new MountMemory
        {
            MountPoint = SystemKey,
            State = system.Count > 0 ? MountState.Errors : MountState.Writable,
            Severity = system.Count > 0 ? system.Max(p => p.Severity) : null,
        };
        previous.TryGetValue(SystemKey, out var systemBefore);
        var (systemKind, systemMemory) = Transition(systemBefore, systemNow, reminder, now);
        if (systemMemory.Severity is not null || systemKind is not null)
        {
            next[SystemKey] = systemMemory;
        }

        if (systemKind is { } sk)
        {
            alerts.Add(BuildSystem(sk, system, systemBefore, systemMemory, host, now));
        }

        // A mount with a problem that is no longer mounted: the problem is gone with it (an unmount for fsck).
        foreach (var (key, before) in previous)
        {
            if (key != SystemKey && !next.ContainsKey(key) && before.Severity is not null)
            {
                var gone = new MountReport
                {
                    MountPoint = before.MountPoint, Source = before.Device ?? "", FsType = "", DeviceNumber = "",
                    MountOptions = [], SuperOptions = [], State = MountState.Writable,
                };
                alerts.Add(Build(GuardAlertKind.AllClear, gone, before, before with { Severity = null }, host, now, unmounted: true));
            }
        }

        return (alerts, next);
    }

    private static (GuardAlertKind?, MountMemory) Transition(MountMemory? before, MountMemory now, TimeSpan reminder, DateTimeOffset time)
    {
        var wasBad = before?.Severity is not null;
        var isBad = now.Severity is not null;
        if (!wasBad && !isBad)
        {
            return (null, now);
        }

        if (!wasBad)
        {
            return (GuardAlertKind.Problem, now with { ProblemSince = time, LastAlert = time });
        }

        if (!isBad)
        {
            return (GuardAlertKind.AllClear, now);
        }

        var carried = now with { ProblemSince = before!.ProblemSince ?? time, LastAlert = before.LastAlert };
        if (now.Severity > before.Severity || now.State > before.State || now.Ext4ErrorCount > before.Ext4ErrorCount)
        {
            return (GuardAlertKind.Worse, carried with { LastAlert = time });
        }

        // Better but not fine (e.g. shutdown -> errors after a remount): no alert, remember the lower level so a
        // relapse counts as worse again.
        if (reminder > TimeSpan.Zero && carried.LastAlert is { } last && time - last >= reminder)
        {
            return (GuardAlertKind.Reminder, carried with { LastAlert = time });
        }

        return (null, carried);
    }

    private static GuardAlert Build(GuardAlertKind kind, MountReport m, MountMemory? before, MountMemory memory, string host, DateTimeOffset now, bool unmounted = false)
    {
        var ext4 = m.Ext4Sysfs ?? m.Ext4Superblock;
        var device = m.DeviceName ?? before?.Device;
        var where = $"{m.MountPoint} ({device ?? m.Source})";
        var summary = kind switch
        {
            GuardAlertKind.AllClear when unmounted => $"all clear: {where} is no longer mounted (was {NagiosOutput.StateWord(before!.State)})",
            GuardAlertKind.AllClear => $"all clear: {where} is {NagiosOutput.StateWord(m.State)} again (was {NagiosOutput.StateWord(before!.State)})",
            GuardAlertKind.Worse => $"{where} got worse: {NagiosOutput.StateWord(m.State)} (was {NagiosOutput.StateWord(before!.State)})",
            GuardAlertKind.Reminder => $"still {NagiosOutput.StateWord(m.State)}: {where} since {memory.ProblemSince:yyyy-MM-dd HH:mm}Z",
            _ => $"{where} {NagiosOutput.StateWord(m.State)}",
        };
        return new GuardAlert
        {
            Id = MakeId(host, m.MountPoint, kind, now),
            Kind = kind,
            Time = now,
            Host = host,
            Severity = kind == GuardAlertKind.AllClear ? "ok" : memory.Severity == Severity.Error ? "critical" : "warning",
            MountPoint = m.MountPoint,
            Source = m.Source,
            Device = device,
            FsType = m.FsType.Length > 0 ? m.FsType : null,
            State = m.State,
            PreviousState = before?.State,
            ProblemSince = memory.ProblemSince ?? before?.ProblemSince,
            Summary = summary,
            ErrorsBehaviour = m.ErrorsBehaviour,
            Ext4ErrorCount = memory.Ext4ErrorCount,
            FirstError = ext4?.FirstError is { } f ? GuardChecker.Describe(f) : null,
            LastError = ext4?.LastError is { } l ? GuardChecker.Describe(l) : null,
            Problems = m.Problems.Where(p => p.Severity > Severity.Info).Select(p => $"{p.Code}: {p.Message}").ToArray(),
            KernelLines = m.KernelLines,
            Advice = m.Advice,
        };
    }

    private static GuardAlert BuildSystem(GuardAlertKind kind, List<Finding> problems, MountMemory? before, MountMemory memory, string host, DateTimeOffset now) => new()
    {
        Id = MakeId(host, SystemKey, kind, now),
        Kind = kind,
        Time = now,
        Host = host,
        Severity = kind == GuardAlertKind.AllClear ? "ok" : memory.Severity == Severity.Error ? "critical" : "warning",
        MountPoint = SystemKey,
        State = memory.State,
        PreviousState = before?.State,
        ProblemSince = memory.ProblemSince,
        Summary = kind == GuardAlertKind.AllClear ? "all clear: no system-wide storage problems" : problems.Count > 0 ? problems[0].Message : "system-wide storage problem",
        Problems = problems.Select(p => $"{p.Code}: {p.Message}").ToArray(),
    };

    // 16 hex digits over what makes this alert unique; made once, then stored with the alert.
    private static string MakeId(string host, string key, GuardAlertKind kind, DateTimeOffset now)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{host}\n{key}\n{kind}\n{now.UtcTicks}\n{Guid.NewGuid()}"));
        return Convert.ToHexStringLower(bytes.AsSpan(0, 8));
    }
}
