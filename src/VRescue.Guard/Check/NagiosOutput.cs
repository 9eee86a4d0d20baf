// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Guard.Check;

/// <summary>
/// Nagios/Icinga plugin output (Nagios plugin API; Monitoring::Plugin::Performance): one status line
/// <c>GUARD STATUS: text | perfdata</c>, then long output. Perfdata is <c>'label'=value[UOM];warn;crit;min;max</c>.
/// </summary>
public static class NagiosOutput
{
    /// <summary>The status line with perfdata, then one line per problem.</summary>
    public static string Format(GuardReport report)
    {
        var problems = report.Mounts.SelectMany(m => m.Problems).Concat(report.Problems).Where(p => p.Severity > Severity.Info).ToList();
        var critical = report.Mounts.Count(m => m.Severity == Severity.Error);
        var warning = report.Mounts.Count(m => m.Severity == Severity.Warning);
        var bad = report.Mounts.Where(m => m.Severity >= Severity.Warning).Select(m => $"{Clean(m.MountPoint)} {StateWord(m.State)}").ToList();
        var text = bad.Count switch
        {
            0 when problems.Count == 0 => $"{report.Mounts.Count} filesystem(s) writable or read-only by intent",
            0 => Clean(problems[0].Message),
            _ => string.Join(", ", bad),
        };

        var sb = new StringBuilder();
        sb.Append("GUARD ").Append(StatusWord(report.Status)).Append(": ").Append(text).Append(" | ");
        sb.Append(CultureInfo.InvariantCulture, $"'checked'={report.Mounts.Count};;;0; 'critical'={critical};;1;0; 'warning'={warning};1;;0; 'ext4_errors'={report.Ext4ErrorCount}c");
        sb.Append('\n');
        foreach (var p in problems)
        {
            sb.Append(p.Severity == Severity.Error ? "CRITICAL " : "WARNING ").Append(Clean(p.Message)).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>The status line for a check that could not run (exit 3).</summary>
    public static string Unknown(string reason) => $"GUARD UNKNOWN: {Clean(reason)}\n";

    public static string StatusWord(GuardStatus s) => s switch
    {
        GuardStatus.Ok => "OK",
        GuardStatus.Warning => "WARNING",
        GuardStatus.Critical => "CRITICAL",
        _ => "UNKNOWN",
    };

    /// <summary>Short state word for status lines.</summary>
    public static string StateWord(MountState s) => s switch
    {
        MountState.Shutdown => "shut down",
        MountState.EmergencyReadOnly => "emergency read-only",
        MountState.ReadOnly => "read-only after error",
        MountState.Hung => "hung",
        MountState.ReadOnlyAgainstFstab => "read-only (fstab says rw)",
        MountState.Errors => "errors",
        MountState.IntendedReadOnly => "read-only by intent",
        _ => "writable",
    };

    // The plugin API is line based and '|' starts perfdata: a mount point may hold newlines (octal-decoded), so keep
    // them visible but harmless.
    private static string Clean(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("|", "/", StringComparison.Ordinal);
}
