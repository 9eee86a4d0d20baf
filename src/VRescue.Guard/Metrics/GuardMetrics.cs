// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Guard.Check;

namespace VRescue.Guard.Metrics;

/// <summary>Daemon facts that are not in the check report.</summary>
public sealed record GuardMetricsExtra(DateTimeOffset CheckTime, double CheckDurationSeconds, int AlertsSpooled, int AlertsSpooledInMemory);

/// <summary>
/// Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): HELP and TYPE
/// for every family, one application prefix, base units, <c>_total</c> for counters, <c>_timestamp_seconds</c> for
/// times (prometheus.io/docs/practices/naming). Label values are the decoded mount points, escaped for the format.
/// </summary>
public static class GuardMetrics
{
    /// <summary>File name in node_exporter's textfile directory (only *.prom files are read).</summary>
    public const string TextfileName = "vrescue_guard.prom";

    private static readonly MountState[] s_states = Enum.GetValues<MountState>();

    public static string Render(GuardReport report, GuardMetricsExtra extra)
    {
        var sb = new StringBuilder();
        Family(sb, "vrescue_guard_status", "gauge", "Overall result of the last check: 0 ok, 1 warning, 2 critical, 3 unknown (Nagios plugin codes).");
        Sample(sb, "vrescue_guard_status", "", (int)report.Status);

        Family(sb, "vrescue_guard_filesystem_state", "gauge", "1 for the state the watched filesystem is in, 0 for the other states.");
        foreach (var m in report.Mounts)
        {
            foreach (var s in s_states)
            {
                Sample(sb, "vrescue_guard_filesystem_state", Labels(m) + $",state=\"{StateLabel(s)}\"", m.State == s ? 1 : 0);
            }
        }

        Family(sb, "vrescue_guard_filesystem_writable", "gauge", "1 when the filesystem takes writes as far as the check can tell (writable or only errors), 0 otherwise (read-only by intent included).");
        foreach (var m in report.Mounts)
        {
            Sample(sb, "vrescue_guard_filesystem_writable", Labels(m), m.State is MountState.Writable or MountState.Errors ? 1 : 0);
        }

        Family(sb, "vrescue_guard_filesystem_problem_severity", "gauge", "Worst problem on the filesystem: 0 none, 1 warning, 2 critical.");
        foreach (var m in report.Mounts)
        {
            Sample(sb, "vrescue_guard_filesystem_problem_severity", Labels(m), m.Severity switch { Severity.Error => 2, Severity.Warning => 1, _ => 0 });
        }

        Family(sb, "vrescue_guard_filesystem_kernel_lines", "gauge", "Kernel log lines about the filesystem or its disk since it was mounted.");
        foreach (var m in report.Mounts)
        {
            Sample(sb, "vrescue_guard_filesystem_kernel_lines", Labels(m), m.KernelLineCount);
        }

        var ext = report.Mounts.Where(m => (m.Ext4Sysfs ?? m.Ext4Superblock) is not null).ToList();
        Family(sb, "vrescue_guard_ext4_errors_total", "counter", "ext2/3/4 error count since the last fsck (/sys/fs/ext4/NAME/errors_count or the superblock's s_error_count).");
        foreach (var m in ext)
        {
            Sample(sb, "vrescue_guard_ext4_errors_total", Labels(m), (m.Ext4Sysfs ?? m.Ext4Superblock)!.ErrorCount);
        }

        Family(sb, "vrescue_guard_ext4_last_error_timestamp_seconds", "gauge", "Time of the last recorded ext2/3/4 error, Unix seconds.");
        foreach (var m in ext)
        {
            if ((m.Ext4Sysfs ?? m.Ext4Superblock)!.LastError is { } last)
            {
                Sample(sb, "vrescue_guard_ext4_last_error_timestamp_seconds", Labels(m), last.Time.ToUnixTimeSeconds());
            }
        }

        Family(sb, "vrescue_guard_probe_duration_seconds", "gauge", "Duration of the last O_TMPFILE write probe.");
        foreach (var m in report.Mounts)
        {
            if (m.Probe is { } p)
            {
                Sample(sb, "vrescue_guard_probe_duration_seconds", Labels(m), p.DurationMilliseconds / 1000.0);
            }
        }

        Family(sb, "vrescue_guard_last_check_timestamp_seconds", "gauge", "When the last check finished, Unix seconds.");
        Sample(sb, "vrescue_guard_last_check_timestamp_seconds", "", extra.CheckTime.ToUnixTimeMilliseconds() / 1000.0);
        Family(sb, "vrescue_guard_check_duration_seconds", "gauge", "Duration of the last check.");
        Sample(sb, "vrescue_guard_check_duration_seconds", "", extra.CheckDurationSeconds);
        Family(sb, "vrescue_guard_alerts_spooled", "gauge", "Alert deliveries waiting in the spool for a channel to come back.");
        Sample(sb, "vrescue_guard_alerts_spooled", "", extra.AlertsSpooled);
        Family(sb, "vrescue_guard_alerts_spooled_in_memory", "gauge", "Spooled deliveries held only in memory because no spool directory took writes.");
        Sample(sb, "vrescue_guard_alerts_spooled_in_memory", "", extra.AlertsSpooledInMemory);
        return sb.ToString();
    }

    /// <summary>The state label value: the kebab-case name also used in --json.</summary>
    public static string StateLabel(MountState s) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(s.ToString());

    /// <summary>Writes the textfile atomically: temporary file in the same directory, then rename (node_exporter README).</summary>
    public static void WriteTextfile(string dir, string text)
    {
        var tmp = Path.Combine(dir, $".{TextfileName}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(tmp, text);
            File.Move(tmp, Path.Combine(dir, TextfileName), overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            throw;
        }
    }

    /// <summary>Exposition label value escaping: backslash, double quote and line feed.</summary>
    public static string Escape(string value) => value
        .Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal)
        .Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Labels(MountReport m) =>
        $"mountpoint=\"{Escape(m.MountPoint)}\",device=\"{Escape(m.DeviceName ?? m.Source)}\",fstype=\"{Escape(m.FsType)}\"";

    private static void Family(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Sample(StringBuilder sb, string name, string labels, double value)
    {
        sb.Append(name);
        if (labels.Length > 0)
        {
            sb.Append('{').Append(labels).Append('}');
        }

        sb.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }
}
