// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Guard.Check;
using VRescue.Guard.Metrics;
using VRescue.TestSupport;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

public sealed class GuardMetricsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-metrics-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static readonly GuardMetricsExtra s_extra = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero), 0.0125, 2, 1);

    private static string Odd => "/mnt/a \"quoted\" back\\slash\nnewline";

    [Fact]
    public void Label_values_are_escaped_and_every_family_has_help_and_type()
    {
        var text = GuardMetrics.Render(Report(Mount(Odd, MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 3), Mount("/ok", MountState.Writable)), s_extra);
        const string label = "mountpoint=\"/mnt/a \\\"quoted\\\" back\\\\slash\\nnewline\",device=\"loop7\",fstype=\"ext4\"";
        Assert.Contains($"vrescue_guard_filesystem_state{{{label},state=\"emergency-read-only\"}} 1\n", text, StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_filesystem_state{{{label},state=\"writable\"}} 0\n", text, StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_filesystem_writable{{{label}}} 0\n", text, StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_ext4_errors_total{{{label}}} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("vrescue_guard_filesystem_writable{mountpoint=\"/ok\",device=\"loop7\",fstype=\"ext4\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("vrescue_guard_last_check_timestamp_seconds 1795341600\n", text, StringComparison.Ordinal);
        Assert.Contains("vrescue_guard_alerts_spooled 2\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE vrescue_guard_ext4_errors_total counter\n", text, StringComparison.Ordinal);
        var names = text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('{', ' ')[0]).Distinct();
        Assert.All(names, n => Assert.Contains($"# HELP {n} ", text, StringComparison.Ordinal));
        Assert.All(names, n => Assert.Matches("^vrescue_guard_[a-z0-9_]+$", n));
    }

    [RealFact("promtool")]
    public void Promtool_check_metrics_passes()
    {
        var text = GuardMetrics.Render(Report(Mount(Odd, MountState.Shutdown, Severity.Error, ext4Errors: 1), Mount("/ok", MountState.Writable)), s_extra);
        var psi = new ProcessStartInfo("promtool", "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(text);
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0 && output.Trim().Length == 0, $"promtool: exit {p.ExitCode}: {output}");
    }

    [Fact]
    public void Textfile_is_replaced_atomically_and_leaves_no_temporary_file()
    {
        GuardMetrics.WriteTextfile(_dir.FullName, "a 1\n");
        GuardMetrics.WriteTextfile(_dir.FullName, "a 2\n");
        Assert.Equal([GuardMetrics.TextfileName], _dir.GetFiles().Select(f => f.Name));
        Assert.Equal("a 2\n", File.ReadAllText(Path.Combine(_dir.FullName, GuardMetrics.TextfileName)));
    }

    [Fact]
    public async Task Http_endpoint_on_port_0_serves_metrics_and_404s_the_rest()
    {
        await using var server = new MetricsHttpServer("127.0.0.1:0");
        Assert.NotEqual(0, server.Port);
        server.Update("vrescue_guard_status 0\n");
        var (head, body) = await Get(server.Port, "/metrics");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8", head, StringComparison.Ordinal);
        Assert.Equal("vrescue_guard_status 0\n", body);
        Assert.StartsWith("HTTP/1.1 404", (await Get(server.Port, "/other")).Head, StringComparison.Ordinal);
        using var http = new HttpClient();
        Assert.Equal("vrescue_guard_status 0\n", await http.GetStringAsync($"http://127.0.0.1:{server.Port}/metrics"));
    }

    private static async Task<(string Head, string Body)> Get(int port, string path)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var s = tcp.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        using var r = new StreamReader(s);
        var all = await r.ReadToEndAsync();
        var split = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (all[..split], all[(split + 4)..]);
    }
}
