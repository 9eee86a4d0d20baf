// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace VRescue.Guard.Alerts;

/// <summary>
/// Renders alerts as text for people: the mail message (RFC 5322), the one-line form for syslog. Mount points and
/// kernel text are untrusted: a mount point may legally contain CR, LF and tabs (mountinfo octal escapes), so every
/// header value passes through <see cref="HeaderValue"/> and body lines through <see cref="OneLine"/>.
/// </summary>
public static class AlertText
{
    /// <summary>Subject line text (before RFC 2047 encoding).</summary>
    public static string Subject(GuardAlert a, string prefix) =>
        $"{prefix} {a.Severity.ToUpperInvariant()} {a.Host}: {a.Summary}".Trim();

    /// <summary>The plain-text body: what happened, where, the recorded errors, the kernel lines, the advice.</summary>
    public static string Body(GuardAlert a)
    {
        var sb = new StringBuilder();
        void Line(string s) => sb.Append(OneLine(s)).Append('\n');
        Line($"{a.Summary}");
        Line("");
        Line($"host:        {a.Host}");
        Line($"mount point: {a.MountPoint}");
        if (a.Device is not null || a.Source is not null)
        {
            Line($"device:      {a.Device ?? "?"} (source {a.Source ?? "?"}{(a.FsType is null ? "" : ", " + a.FsType)})");
        }

        Line($"state:       {Words(a.State)}{(a.PreviousState is { } p ? $" (was {Words(p)})" : "")}");
        Line($"alert:       {a.Kind.ToString().ToLowerInvariant()} {a.Id} at {Iso(a.Time)}");
        if (a.ProblemSince is { } since && a.Kind != GuardAlertKind.Problem)
        {
            Line($"problem since {Iso(since)}");
        }

        if (a.ErrorsBehaviour is not null)
        {
            Line($"errors=      {a.ErrorsBehaviour}");
        }

        if (a.FirstError is not null || a.Ext4ErrorCount > 0)
        {
            Line($"ext4 errors: {a.Ext4ErrorCount.ToString(CultureInfo.InvariantCulture)}");
            Line($"first error: {a.FirstError ?? "none"}");
            Line($"last error:  {a.LastError ?? "none"}");
        }

        Section(sb, "problems", a.Problems);
        Section(sb, "kernel log", a.KernelLines);
        Section(sb, "advice", a.Advice);
        Line("");
        Line("-- vrescue guard (docs/guard.md)");
        return sb.ToString();
    }

    private static void Section(StringBuilder sb, string title, IReadOnlyList<string> lines)
    {
        if (lines.Count == 0)
        {
            return;
        }

        sb.Append('\n').Append(title).Append(":\n");
        foreach (var l in lines)
        {
            sb.Append("  ").Append(OneLine(l)).Append('\n');
        }
    }

    /// <summary>The whole mail, CRLF line ends, ready for SMTP DATA (before dot-stuffing) or sendmail -t -i.</summary>
    public static string Mail(GuardAlert a, string from, IReadOnlyList<string> to, string subjectPrefix)
    {
        var sb = new StringBuilder();
        void Header(string name, string value) => sb.Append(name).Append(": ").Append(value).Append("\r\n");
        Header("From", $"vrescue-guard <{from}>");
        Header("To", string.Join(", ", to));
        Header("Subject", EncodeWord(HeaderValue(Subject(a, subjectPrefix))));
        Header("Date", a.Time.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture));
        Header("Message-ID", $"<{a.Id}.{a.Kind.ToString().ToLowerInvariant()}@vrescue-guard.{HostToken(a.Host)}>");
        Header("MIME-Version", "1.0");
        Header("Content-Type", "text/plain; charset=utf-8");
        Header("Content-Transfer-Encoding", "base64");
        Header("Auto-Submitted", "auto-generated");
        Header("X-VRescue-Guard-Alert", $"{a.Id} {a.Kind.ToString().ToLowerInvariant()} {a.Severity}");
        sb.Append("\r\n");
        // base64 keeps every body byte (non-ASCII kernel text, lone CR in a mount name) out of the SMTP line syntax.
        var body = Convert.ToBase64String(Encoding.UTF8.GetBytes(Body(a).Replace("\n", "\r\n", StringComparison.Ordinal)));
        for (var i = 0; i < body.Length; i += 76)
        {
            sb.Append(body.AsSpan(i, Math.Min(76, body.Length - i))).Append("\r\n");
        }

        return sb.ToString();
    }

    /// <summary>One line for syslog and logs: summary, first error, and the last kernel line.</summary>
    public static string Short(GuardAlert a)
    {
        var s = $"{a.Severity.ToUpperInvariant()} {a.Summary} [alert {a.Id}]";
        if (a.FirstError is not null)
        {
            s += $" first error {a.FirstError}";
        }

        if (a.KernelLines.Count > 0)
        {
            s += $"; kernel: {a.KernelLines[^1]}";
        }

        return OneLine(s);
    }

    /// <summary>
    /// A header value that cannot start a new header: CR, LF and other controls become visible escapes
    /// (<c>\r</c>, <c>\n</c>, <c>\xNN</c>), so "/mnt/x\r\nBcc: a@b" stays inside the Subject as text.
    /// </summary>
    public static string HeaderValue(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s)
        {
            _ = ch switch
            {
                '\r' => sb.Append("\\r"),
                '\n' => sb.Append("\\n"),
                '\t' => sb.Append(' '),
                _ when char.IsControl(ch) => sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)ch:x2}"),
                _ => sb.Append(ch),
            };
        }

        return sb.ToString();
    }

    /// <summary>Body and log line form: same escapes as <see cref="HeaderValue"/>, tabs kept.</summary>
    public static string OneLine(string s) => HeaderValue(s.Replace("\t", "\\t", StringComparison.Ordinal));

    /// <summary>RFC 2047 B-encoded words for non-ASCII text, each at most 75 characters; ASCII is returned as is.</summary>
    public static string EncodeWord(string s)
    {
        if (s.All(c => c is >= ' ' and < (char)127))
        {
            return s;
        }

        var words = new List<string>();
        var chunk = new StringBuilder();
        foreach (var rune in s.EnumerateRunes())
        {
            // 45 UTF-8 bytes -> 60 base64 characters + 12 for "=?utf-8?B??=" stays under 75 (RFC 2047 §2).
            if (Encoding.UTF8.GetByteCount(chunk.ToString()) + rune.Utf8SequenceLength > 45)
            {
                words.Add(chunk.ToString());
                chunk.Clear();
            }

            chunk.Append(rune.ToString());
        }

        words.Add(chunk.ToString());
        return string.Join("\r\n ", words.Select(w => $"=?utf-8?B?{Convert.ToBase64String(Encoding.UTF8.GetBytes(w))}?="));
    }

    private static string HostToken(string host)
    {
        var t = new string(host.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-').ToArray());
        return t.Length == 0 ? "localhost" : t;
    }

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>State as words ("emergency read-only").</summary>
    public static string Words(Check.MountState s) => Check.NagiosOutput.StateWord(s);
}
