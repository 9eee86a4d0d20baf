// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Install;
using VRescue.Guard.Run;

namespace VRescue.Guard.Tests;

public sealed class GuardConfigTests
{
    [Fact]
    public void The_shipped_example_config_parses_with_its_documented_defaults()
    {
        var s = GuardConfigLoader.Parse(GuardInstaller.Resource("guard.example.yaml"), "guard.example.yaml");
        Assert.Equal(TimeSpan.FromSeconds(60), s.Interval);
        Assert.Equal(TimeSpan.FromHours(4), s.Reminder);
        Assert.Equal(Severity.Warning, s.MinSeverity);
        Assert.Equal(["/run/vrescue-guard", "/var/lib/vrescue-guard"], s.StateDirs);
        Assert.Equal(["mail", "syslog"], s.Channels.Select(c => c.Name));
        Assert.Equal(587, s.Channels[0].Port);
        Assert.True(s.Inputs.WriteProbe);
        Assert.Equal("/dev/kmsg", s.Inputs.KmsgPath);
        Assert.True(s.WakeOnKernelLog);
        Assert.Equal("/run/prometheus-node-exporter/textfile", s.TextfileDir);
    }

    [Fact]
    public void An_unknown_key_is_an_error_with_its_position()
    {
        var e = Assert.Throws<GuardConfigException>(() => GuardConfigLoader.Parse("interval: 30s\nchannels:\n  - type: smtp\n    hots: mail\n", "g.yaml"));
        Assert.StartsWith("g.yaml: line 4, column 5:", e.Message, StringComparison.Ordinal);
        Assert.Contains("hots", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("channels: [{type: smtp, host: h, from: \"a@b\", to: [\"x@y\\r\\nBcc: e@v\"]}]", "not a plain address")]
    [InlineData("channels: [{type: smtp, host: h, from: \"a@b\", to: [\"<x@y>\"]}]", "not a plain address")]
    [InlineData("channels: [{type: smtp, from: \"a@b\", to: [x@y]}]", "needs 'host'")]
    [InlineData("channels: [{type: pager}]", "type must be one of")]
    [InlineData("channels: [{type: webhook, url: \"ftp://x\"}]", "http(s) 'url'")]
    [InlineData("channels: [{type: webhook, url: \"http://x\", headers: {X-A: \"1\\r\\nX-B: 2\"}}]", "line breaks")]
    [InlineData("channels: [{type: syslog}, {type: syslog}]", "two channels are named 'syslog'")]
    [InlineData("interval: soon", "interval 'soon' is not a duration")]
    [InlineData("min_severity: info", "min_severity")]
    [InlineData("state_dirs: []", "state_dirs")]
    public void Invalid_settings_are_refused_with_the_reason(string yaml, string reason)
    {
        var e = Assert.Throws<GuardConfigException>(() => GuardConfigLoader.Parse(yaml));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("90", 90)]
    [InlineData("90s", 90)]
    [InlineData("5m", 300)]
    [InlineData("4h", 14400)]
    [InlineData("1d", 86400)]
    [InlineData("250ms", 0.25)]
    [InlineData("0", 0)]
    public void Durations(string text, double seconds) => Assert.Equal(seconds, GuardConfigLoader.Duration(text, "k", "c").TotalSeconds);
}
