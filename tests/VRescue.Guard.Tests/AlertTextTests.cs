// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Guard.Alerts;
using VRescue.Guard.Channels;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

public sealed class AlertTextTests
{
    private static List<string> HeaderLines(string mail) => mail[..mail.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n").ToList();

    [Fact]
    public void Crlf_in_a_mount_point_cannot_add_a_header()
    {
        var evil = "/mnt/x\r\nBcc: evil@example.com\r\n\r\nfake body\n.\nRCPT TO:<evil@example.com>";
        var mail = AlertText.Mail(Alert(evil), "guard@example.com", ["ops@example.com"], "[vrescue-guard]");

        var headers = HeaderLines(mail);
        Assert.DoesNotContain(headers, h => h.StartsWith("Bcc", StringComparison.OrdinalIgnoreCase));
        Assert.All(headers, h => Assert.Matches(@"^([A-Za-z-]+: | )", h));
        var subject = Assert.Single(headers, h => h.StartsWith("Subject: ", StringComparison.Ordinal));
        Assert.Contains(@"/mnt/x\r\nBcc: evil@example.com\r\n\r\nfake body\n.\nRCPT TO:<evil@example.com>", subject, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', mail.Replace("\r\n", "", StringComparison.Ordinal));
        Assert.DoesNotContain('\r', mail.Replace("\r\n", "", StringComparison.Ordinal));

        // The body is base64: nothing in it can end the SMTP DATA phase or look like a header.
        var body = Encoding.UTF8.GetString(Convert.FromBase64String(mail[(mail.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..].Replace("\r\n", "", StringComparison.Ordinal)));
        Assert.Contains(@"mount point: /mnt/x\r\nBcc: evil@example.com", body, StringComparison.Ordinal);
        Assert.Contains("trigger_test_error:129", body, StringComparison.Ordinal);
    }

    [Fact]
    public void Control_characters_and_kernel_text_stay_on_one_syslog_line()
    {
        var a = Alert("/mnt/a\nb\u0007") with { KernelLines = ["EXT4-fs error\r\n<0>injected"] };
        var line = SyslogChannel.Format(a, "rfc5424", 3, 4242);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\r', line);
        Assert.StartsWith("<26>1 2026-11-22T10:00:00.000000Z guest1 vrescue-guard 4242 0123456789abcdef - CRITICAL /mnt/a\\nb\\x07", line, StringComparison.Ordinal);
        Assert.StartsWith("<26>Nov 22 10:00:00 vrescue-guard[4242]: CRITICAL", SyslogChannel.Format(a, "rfc3164", 3, 4242), StringComparison.Ordinal);
        Assert.StartsWith("<29>", SyslogChannel.Format(a with { Severity = "ok" }, "rfc5424", 3, 1), StringComparison.Ordinal);
    }

    [Fact]
    public void Non_ascii_subjects_are_rfc2047_encoded_words_of_at_most_75_characters()
    {
        var mail = AlertText.Mail(Alert("/srv/données/" + new string('é', 60)), "g@example.com", ["o@example.com"], "[vrescue-guard]");
        var subject = HeaderLines(mail).SkipWhile(h => !h.StartsWith("Subject:", StringComparison.Ordinal)).TakeWhile(h => h.StartsWith("Subject:", StringComparison.Ordinal) || h.StartsWith(' ')).ToList();
        Assert.True(subject.Count > 1);
        var words = subject.Select(h => h.StartsWith("Subject: ", StringComparison.Ordinal) ? h[9..] : h[1..]).ToList();
        Assert.All(words, w => Assert.Matches(@"^=\?utf-8\?B\?[A-Za-z0-9+/=]+\?=$", w));
        Assert.All(words, w => Assert.True(w.Length <= 75, w));
        var decoded = string.Concat(words.Select(w => Encoding.UTF8.GetString(Convert.FromBase64String(w[10..^2]))));
        Assert.Contains("/srv/données/éé", decoded, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n")]
    [InlineData(".x", "..x\r\n")]
    [InlineData("a\r\n..b", "a\r\n...b\r\n")]
    public void Smtp_data_is_dot_stuffed(string message, string expected) => Assert.Equal(expected, SmtpChannel.DotStuff(message));
}
