// SPDX-License-Identifier: MIT
using VRescue.Guard.Check;

namespace VRescue.Guard.Alerts;

/// <summary>Why an alert was raised: a transition, or a reminder that a problem still lasts.</summary>
public enum GuardAlertKind
{
    /// <summary>A mount went from fine to a problem.</summary>
    Problem,

    /// <summary>A mount with a problem got worse (state, severity or ext4 error count rose).</summary>
    Worse,

    /// <summary>The problem still lasts (sent every <c>reminder</c> interval).</summary>
    Reminder,

    /// <summary>The mount is fine again, or is no longer mounted.</summary>
    AllClear,
}

/// <summary>
/// One alert about one mount (or about the system, for problems not tied to a mount). <see cref="Id"/> is made once
/// when the alert is raised and travels with every retry, so receivers can deduplicate (mail Message-ID, webhook
/// Idempotency-Key, syslog MSGID).
/// </summary>
public sealed record GuardAlert
{
    public required string Id { get; init; }
    public required GuardAlertKind Kind { get; init; }
    public required DateTimeOffset Time { get; init; }
    public required string Host { get; init; }

    /// <summary>"critical", "warning" or "ok" (all-clear).</summary>
    public required string Severity { get; init; }

    public required string MountPoint { get; init; }
    public string? Source { get; init; }
    public string? Device { get; init; }
    public string? FsType { get; init; }
    public required MountState State { get; init; }
    public MountState? PreviousState { get; init; }

    /// <summary>When the problem started (the first Problem alert of this episode).</summary>
    public DateTimeOffset? ProblemSince { get; init; }

    /// <summary>One line, for subjects and syslog.</summary>
    public required string Summary { get; init; }

    public string? ErrorsBehaviour { get; init; }
    public long Ext4ErrorCount { get; init; }
    public string? FirstError { get; init; }
    public string? LastError { get; init; }
    public IReadOnlyList<string> Problems { get; init; } = [];
    public IReadOnlyList<string> KernelLines { get; init; } = [];
    public IReadOnlyList<string> Advice { get; init; } = [];
}
