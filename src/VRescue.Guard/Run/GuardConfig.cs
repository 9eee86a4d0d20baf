// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Guard.Check;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace VRescue.Guard.Run;

/// <summary>
/// The YAML configuration of <c>vrescue guard run</c> as written (snake_case keys; packaging/guard/guard.example.yaml
/// documents every key). Unknown keys are rejected: a misspelt channel key would otherwise silence alerts.
/// Durations are "90", "90s", "5m", "4h", "1d" or "250ms".
/// </summary>
public sealed class GuardConfigFile
{
    public string Interval { get; set; } = "60s";
    public string Reminder { get; set; } = "4h";
    public string MinSeverity { get; set; } = "warning";
    public string? Hostname { get; set; }
    public bool WriteProbe { get; set; } = true;
    public string ProbeTimeout { get; set; } = "10s";
    public string KernelLog { get; set; } = "/dev/kmsg";
    public bool WakeOnKernelLog { get; set; } = true;
    public int TimeoutFloor { get; set; } = 180;
    public List<string> Mounts { get; set; } = [];
    public List<string> IgnoreMountPrefixes { get; set; } = [];
    public List<string> IgnoreFsTypes { get; set; } = [];
    public List<string> StateDirs { get; set; } = ["/run/vrescue-guard", "/var/lib/vrescue-guard"];
    public GuardInputsConfig Inputs { get; set; } = new();
    public GuardRetryConfig Retry { get; set; } = new();
    public GuardMetricsConfig Metrics { get; set; } = new();
    public List<GuardChannelConfig> Channels { get; set; } = [];
}

/// <summary>Where the check reads from (tests and captures; defaults are the live system).</summary>
public sealed class GuardInputsConfig
{
    public string? Mountinfo { get; set; }
    public string Fstab { get; set; } = "/etc/fstab";
    public string Sysfs { get; set; } = "/sys";
    public string Proc { get; set; } = "/proc";
    public string Dev { get; set; } = "/dev";
    public bool ReadSuperblocks { get; set; } = true;
}

/// <summary>Backoff for spooled deliveries: initial, doubled per failure, capped at max.</summary>
public sealed class GuardRetryConfig
{
    public string Initial { get; set; } = "30s";
    public string Max { get; set; } = "30m";
}

/// <summary>Prometheus outputs; both optional.</summary>
public sealed class GuardMetricsConfig
{
    /// <summary>node_exporter --collector.textfile.directory; vrescue_guard.prom is written there atomically.</summary>
    public string? TextfileDir { get; set; }

    /// <summary>HOST:PORT for an HTTP /metrics endpoint (port 0 picks a free one).</summary>
    public string? Listen { get; set; }
}

/// <summary>One alert channel; which keys apply depends on <see cref="Type"/>.</summary>
public sealed class GuardChannelConfig
{
    public string Type { get; set; } = "";
    public string? Name { get; set; }
    public string Timeout { get; set; } = "20s";

    // mail (smtp, sendmail)
    public string? From { get; set; }
    public List<string> To { get; set; } = [];
    public string SubjectPrefix { get; set; } = "[vrescue-guard]";

    // smtp
    public string? Host { get; set; }
    public int Port { get; set; } = 25;
    public string Tls { get; set; } = "auto";
    public bool TlsVerify { get; set; } = true;

    /// <summary>PEM file of the CA certificate(s) trusted for this relay instead of the system store (a self-signed relay: its own certificate).</summary>
    public string? CaFile { get; set; }

    public string? Username { get; set; }
    public string? Password { get; set; }
    public string? PasswordFile { get; set; }
    public bool AllowPlaintextAuth { get; set; }
    public string? Helo { get; set; }

    // sendmail
    public string Command { get; set; } = "/usr/sbin/sendmail";

    // webhook
    public string? Url { get; set; }
    public Dictionary<string, string> Headers { get; set; } = [];

    // syslog
    public string Socket { get; set; } = "/dev/log";
    public string Facility { get; set; } = "daemon";
    public string Format { get; set; } = "rfc5424";
}

/// <summary>A configuration file that cannot be used: the message names the key or YAML position.</summary>
public sealed class GuardConfigException(string message) : Exception(message);

/// <summary>Validated settings built from a <see cref="GuardConfigFile"/>.</summary>
public sealed record GuardSettings
{
    public required GuardRules Rules { get; init; }
    public required GuardInputs Inputs { get; init; }
    public required TimeSpan Interval { get; init; }

    /// <summary>Zero: no reminders.</summary>
    public required TimeSpan Reminder { get; init; }

    public required Severity MinSeverity { get; init; }
    public required string Hostname { get; init; }
    public required bool WakeOnKernelLog { get; init; }
    public required IReadOnlyList<string> StateDirs { get; init; }
    public required TimeSpan RetryInitial { get; init; }
    public required TimeSpan RetryMax { get; init; }
    public string? TextfileDir { get; init; }
    public string? MetricsListen { get; init; }
    public required IReadOnlyList<GuardChannelConfig> Channels { get; init; }
}

/// <summary>Reads and validates the YAML configuration.</summary>
public static class GuardConfigLoader
{
    private static readonly string[] s_channelTypes = ["smtp", "sendmail", "webhook", "syslog"];

    public static GuardSettings Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GuardConfigException($"{path}: {e.Message}");
        }

        return Parse(text, path);
    }

    public static GuardSettings Parse(string yaml, string name = "config")
    {
        GuardConfigFile file;
        try
        {
            var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
            file = deserializer.Deserialize<GuardConfigFile?>(yaml) ?? new GuardConfigFile();
        }
        catch (YamlException e)
        {
            var inner = e.InnerException is { } i && i.Message != e.Message ? $" ({i.Message})" : "";
            throw new GuardConfigException($"{name}: line {e.Start.Line}, column {e.Start.Column}: {e.Message}{inner}");
        }

        return Validate(file, name);
    }

    public static GuardSettings Validate(GuardConfigFile f, string name = "config")
    {
        var rules = new GuardRules();
        var interval = Duration(f.Interval, "interval", name);
        if (interval < TimeSpan.FromSeconds(1))
        {
            throw new GuardConfigException($"{name}: interval must be at least 1s");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in f.Channels)
        {
            ValidateChannel(c, name);
            c.Name ??= c.Type;
            if (!names.Add(c.Name))
            {
                throw new GuardConfigException($"{name}: two channels are named '{c.Name}'; give each a distinct name");
            }
        }

        if (f.StateDirs.Count == 0)
        {
            throw new GuardConfigException($"{name}: state_dirs needs at least one directory (e.g. /run/vrescue-guard)");
        }

        return new GuardSettings
        {
            Rules = rules with
            {
                OnlyMountPoints = f.Mounts,
                IgnoredMountPointPrefixes = [.. rules.IgnoredMountPointPrefixes, .. f.IgnoreMountPrefixes],
                IgnoredFsTypes = new HashSet<string>(rules.IgnoredFsTypes.Concat(f.IgnoreFsTypes), StringComparer.Ordinal),
                ProbeDeadline = Duration(f.ProbeTimeout, "probe_timeout", name),
                DiskTimeoutFloorSeconds = f.TimeoutFloor,
            },
            Inputs = new GuardInputs
            {
                MountInfoPath = f.Inputs.Mountinfo,
                FstabPath = f.Inputs.Fstab,
                SysfsRoot = f.Inputs.Sysfs,
                ProcRoot = f.Inputs.Proc,
                DevRoot = f.Inputs.Dev,
                ReadSuperblocks = f.Inputs.ReadSuperblocks,
                KmsgPath = f.KernelLog is "none" or "" ? null : f.KernelLog,
                WriteProbe = f.WriteProbe,
            },
            Interval = interval,
            Reminder = Duration(f.Reminder, "reminder", name),
            MinSeverity = f.MinSeverity switch
            {
                "warning" => Severity.Warning,
                "critical" => Severity.Error,
                _ => throw new GuardConfigException($"{name}: min_severity must be 'warning' or 'critical', not '{f.MinSeverity}'"),
            },
            Hostname = f.Hostname ?? Environment.MachineName,
            WakeOnKernelLog = f.WakeOnKernelLog && f.KernelLog.StartsWith("/dev/", StringComparison.Ordinal),
            StateDirs = f.StateDirs,
            RetryInitial = Duration(f.Retry.Initial, "retry.initial", name),
            RetryMax = Duration(f.Retry.Max, "retry.max", name),
            TextfileDir = string.IsNullOrEmpty(f.Metrics.TextfileDir) ? null : f.Metrics.TextfileDir,
            MetricsListen = string.IsNullOrEmpty(f.Metrics.Listen) ? null : f.Metrics.Listen,
            Channels = f.Channels,
        };
    }

    private static void ValidateChannel(GuardChannelConfig c, string name)
    {
        var where = $"{name}: channel '{c.Name ?? c.Type}'";
        if (!s_channelTypes.Contains(c.Type))
        {
            throw new GuardConfigException($"{where}: type must be one of {string.Join(", ", s_channelTypes)}");
        }

        _ = Duration(c.Timeout, "timeout", where);
        if (c.Type is "smtp" or "sendmail")
        {
            if (c.From is null || c.To.Count == 0)
            {
                throw new GuardConfigException($"{where}: needs 'from' and at least one 'to'");
            }

            foreach (var address in c.To.Append(c.From))
            {
                // Addresses go into SMTP commands and headers verbatim: nothing that could end or split a line.
                if (address.Length == 0 || address.Any(ch => ch is '\r' or '\n' or '<' or '>' or ',' or ' ' or '\t' || char.IsControl(ch)) || !address.Contains('@'))
                {
                    throw new GuardConfigException($"{where}: '{address.ReplaceLineEndings(" ")}' is not a plain address (user@host, no spaces, brackets or line breaks)");
                }
            }
        }

        switch (c.Type)
        {
            case "smtp" when string.IsNullOrEmpty(c.Host):
                throw new GuardConfigException($"{where}: needs 'host'");
            case "smtp" when c.Tls is not ("auto" or "starttls" or "implicit" or "none"):
                throw new GuardConfigException($"{where}: tls must be auto, starttls, implicit or none");
            case "smtp" when c.Username is not null && c.Password is null && c.PasswordFile is null:
                throw new GuardConfigException($"{where}: 'username' needs 'password' or 'password_file'");
            case "smtp" when c.CaFile is not null && c.Tls == "none":
                throw new GuardConfigException($"{where}: 'ca_file' needs TLS (tls: auto, starttls or implicit)");
            case "smtp" when c.CaFile is not null && !c.TlsVerify:
                throw new GuardConfigException($"{where}: 'ca_file' and 'tls_verify: false' contradict each other; keep ca_file");
            case "smtp" when c.CaFile is not null && Channels.SmtpChannel.CaFileProblem(c.CaFile) is { } problem:
                throw new GuardConfigException($"{where}: ca_file {problem}");
            case "webhook" when !Uri.TryCreate(c.Url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"):
                throw new GuardConfigException($"{where}: needs an http(s) 'url'");
            case "webhook" when c.Headers.Any(h => (h.Key + h.Value).Any(ch => ch is '\r' or '\n')):
                throw new GuardConfigException($"{where}: header names and values cannot contain line breaks");
            case "syslog" when c.Format is not ("rfc5424" or "rfc3164"):
                throw new GuardConfigException($"{where}: format must be rfc5424 or rfc3164");
            case "syslog" when Channels.SyslogChannel.FacilityCode(c.Facility) is null:
                throw new GuardConfigException($"{where}: unknown facility '{c.Facility}'");
        }
    }

    /// <summary>"90", "90s", "5m", "4h", "1d", "250ms", "0" (off where allowed).</summary>
    public static TimeSpan Duration(string text, string key, string name)
    {
        var t = text.Trim();
        var (number, unit) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.Length > 0 && char.IsAsciiLetter(t[^1]) ? (t[..^1], t[^1] switch { 's' => 1.0, 'm' => 60.0, 'h' => 3600.0, 'd' => 86400.0, _ => double.NaN })
            : (t, 1.0);
        if (double.IsNaN(unit) || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) || value * unit > 365 * 86400.0)
        {
            throw new GuardConfigException($"{name}: {key} '{text}' is not a duration (e.g. 30s, 5m, 4h, 1d)");
        }

        return TimeSpan.FromSeconds(value * unit);
    }
}
