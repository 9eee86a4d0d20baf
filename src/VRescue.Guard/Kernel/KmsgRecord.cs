// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace VRescue.Guard.Kernel;

/// <summary>
/// One /dev/kmsg record (Documentation/ABI/testing/dev-kmsg): <c>PRI,SEQ,USEC,FLAGS[,...];MESSAGE</c> followed by
/// optional continuation lines <c> KEY=value</c> (SUBSYSTEM=, DEVICE=). PRI is facility*8 + level.
/// </summary>
public sealed record KmsgRecord(int Level, int Facility, ulong Sequence, ulong TimestampMicroseconds, string Message)
{
    /// <summary>Monotonic time since boot, as dmesg prints it.</summary>
    public double TimestampSeconds => TimestampMicroseconds / 1_000_000.0;

    /// <summary>The record the way dmesg shows it, for reports.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"[{TimestampSeconds,12:F6}] {Message}");
}

/// <summary>Pure parser for kmsg text (what a read() of /dev/kmsg returns, or a capture of many such reads).</summary>
public static class KmsgParser
{
    /// <summary>Parses one record; continuation (dictionary) lines are ignored. Null when the prefix is malformed.</summary>
    public static KmsgRecord? ParseRecord(string text)
    {
        var semicolon = text.IndexOf(';');
        if (semicolon <= 0)
        {
            return null;
        }

        var prefix = text.AsSpan(0, semicolon);
        Span<Range> parts = stackalloc Range[5];
        var n = prefix.Split(parts, ',');
        if (n < 3
            || !int.TryParse(prefix[parts[0]], NumberStyles.None, CultureInfo.InvariantCulture, out var pri)
            || !ulong.TryParse(prefix[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
            || !ulong.TryParse(prefix[parts[2]], NumberStyles.None, CultureInfo.InvariantCulture, out var usec))
        {
            return null;
        }

        var message = text[(semicolon + 1)..];
        var newline = message.IndexOf('\n');
        if (newline >= 0)
        {
            message = message[..newline];
        }

        return new KmsgRecord(pri & 7, pri >> 3, seq, usec, Unescape(message));
    }

    /// <summary>Parses a capture: every line that is not a continuation (leading space) and parses is a record.</summary>
    public static IReadOnlyList<KmsgRecord> ParseCapture(string text)
    {
        var records = new List<KmsgRecord>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == ' ')
            {
                continue;
            }

            if (ParseRecord(line) is { } r)
            {
                records.Add(r);
            }
        }

        return records;
    }

    /// <summary>The kernel writes non-printable bytes and backslash as <c>\xNN</c> (kernel/printk/printk.c msg_add_ext_text).</summary>
    public static string Unescape(string message)
    {
        if (!message.Contains("\\x", StringComparison.Ordinal))
        {
            return message;
        }

        var bytes = new List<byte>(message.Length);
        var raw = Encoding.UTF8.GetBytes(message);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && i + 3 < raw.Length && raw[i + 1] == 'x'
                && byte.TryParse(Encoding.ASCII.GetString(raw, i + 2, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
