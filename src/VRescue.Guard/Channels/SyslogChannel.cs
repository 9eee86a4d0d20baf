// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VRescue.Guard.Alerts;
using VRescue.Guard.Run;

namespace VRescue.Guard.Channels;

/// <summary>
/// One datagram per alert to the local syslog socket (/dev/log), RFC 5424 (<c>&lt;PRI&gt;1 TIMESTAMP HOST APP PID
/// MSGID - MSG</c>, MSGID = alert id) or RFC 3164 (<c>&lt;PRI&gt;Mmm dd hh:mm:ss APP[PID]: MSG</c>). Severity:
/// crit (2) for critical, warning (4), notice (5) for the all-clear. The message is one line.
/// </summary>
public sealed class SyslogChannel(GuardChannelConfig config) : IAlertChannel
{
    // Datagrams above this are truncated by some daemons; RFC 5424 §6.1 requires receivers to take 480 octets, and
    // journald and rsyslog take 8 KiB by default.
    private const int MaxMessageBytes = 8 * 1024;

    public string Name => config.Name ?? "syslog";

    public Task DeliverAsync(GuardAlert alert, CancellationToken cancel) => AlertChannels.Guard(Name, async () =>
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(config.Socket), cancel).ConfigureAwait(false);
        var bytes = Encoding.UTF8.GetBytes(Format(alert, config.Format, FacilityCode(config.Facility)!.Value, Environment.ProcessId));
        await socket.SendAsync(bytes.AsMemory(0, Math.Min(bytes.Length, MaxMessageBytes)), SocketFlags.None, cancel).ConfigureAwait(false);
    });

    /// <summary>The datagram text.</summary>
    public static string Format(GuardAlert a, string format, int facility, int pid)
    {
        var severity = a.Severity switch { "critical" => 2, "warning" => 4, _ => 5 };
        var pri = (facility * 8) + severity;
        var msg = AlertText.Short(a);
        var host = Token(a.Host, 255);
        return format == "rfc3164"
            ? string.Create(CultureInfo.InvariantCulture, $"<{pri}>{a.Time.UtcDateTime:MMM} {a.Time.UtcDateTime.Day,2} {a.Time.UtcDateTime:HH:mm:ss} vrescue-guard[{pid}]: {msg}")
            : string.Create(CultureInfo.InvariantCulture, $"<{pri}>1 {a.Time.UtcDateTime:yyyy-MM-ddTHH:mm:ss.ffffffZ} {host} vrescue-guard {pid} {Token(a.Id, 32)} - {msg}");
    }

    /// <summary>syslog(3) facility number by name; null when unknown.</summary>
    public static int? FacilityCode(string name) => name switch
    {
        "kern" => 0, "user" => 1, "mail" => 2, "daemon" => 3, "auth" => 4, "syslog" => 5, "lpr" => 6, "news" => 7,
        "uucp" => 8, "cron" => 9, "authpriv" => 10, "ftp" => 11,
        "local0" => 16, "local1" => 17, "local2" => 18, "local3" => 19, "local4" => 20, "local5" => 21, "local6" => 22, "local7" => 23,
        _ => null,
    };

    // RFC 5424 §6: HOSTNAME, APP-NAME, MSGID are PRINTUSASCII without spaces; "-" when empty.
    private static string Token(string s, int max)
    {
        var t = new string(s.Where(c => c is > ' ' and < (char)127).Take(max).ToArray());
        return t.Length == 0 ? "-" : t;
    }
}
