// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Runtime.InteropServices;
using VRescue.TestSupport;
using static VRescue.Cli.Tests.Guard.GuardRunSupport;

namespace VRescue.Cli.Tests.Guard;

/// <summary>`guard run` and `guard install` command strings on captured inputs and temporary roots (no root needed).</summary>
public sealed class GuardRunCommandTests
{
    private static string Captured(KernelScratch s, string mountInfo, string kmsg, string channels, string listen = "")
    {
        File.WriteAllText(s.PathOf("mountinfo"), mountInfo);
        File.WriteAllText(s.PathOf("kmsg"), kmsg);
        File.WriteAllText(s.PathOf("fstab"), "");
        Directory.CreateDirectory(s.PathOf("prom"));
        var path = s.PathOf("guard.yaml");
        File.WriteAllText(path, $$"""
            interval: 1s
            hostname: guest-test
            write_probe: false
            kernel_log: "{{s.PathOf("kmsg")}}"
            state_dirs: ["{{s.PathOf("state")}}"]
            inputs: { mountinfo: "{{s.PathOf("mountinfo")}}", fstab: "{{s.PathOf("fstab")}}", sysfs: "{{s.Dir}}", proc: "{{s.Dir}}", dev: "{{s.Dir}}" }
            metrics: { textfile_dir: "{{s.PathOf("prom")}}", listen: "{{listen}}" }
            channels:
            {{channels}}
            """);
        return path;
    }

    private const string EmergencyRo = "6,1,1,-;EXT4-fs (loop0): mounted filesystem x r/w with ordered data mode.\n3,2,2,-;EXT4-fs error (device loop0): ext4_journal_check_start:87: comm touch: Detected aborted journal\n";

    [RealFact(GuardRunSupport.Python)]
    public void A_mount_point_that_injects_headers_reaches_the_real_smtp_server_as_text_only()
    {
        using var s = new KernelScratch();
        var port = FreePort();
        var maildir = StartSmtp(s, port);
        // mountinfo escapes a newline as \012 (fs/proc_namespace.c mangle): the decoded name holds "\nBcc: ...".
        var config = Captured(s, "42 26 7:0 / /srv/x\\012Bcc:\\040evil@example.com\\012\\012.\\012 rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n", EmergencyRo, Smtp(port));
        var r = Once(config);
        Assert.Contains("1 delivered", r.Stdout, StringComparison.Ordinal);
        var mail = Assert.Single(Received(maildir));
        Assert.Equal("ops@example.com", mail.Header("X-RcptTo"));
        Assert.Null(mail.Header("Bcc"));
        Assert.Contains(@"/srv/x\nBcc: evil@example.com\n\n.\n (loop0)", mail.Header("Subject"), StringComparison.Ordinal);
        Assert.Contains(@"mount point: /srv/x\nBcc: evil@example.com\n\n.\n", mail.Body, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_config_exits_64_with_the_reason()
    {
        using var s = new KernelScratch();
        File.WriteAllText(s.PathOf("g.yaml"), "interval: 30s\nchanels: []\n");
        var r = Cli.Run("guard", "run", "--once", "--config", s.PathOf("g.yaml"));
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.StartsWith($"vrescue: {s.PathOf("g.yaml")}: line 2, column 1:", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_daemon_serves_metrics_on_a_free_port_and_stops_cleanly_on_sigterm()
    {
        using var s = new KernelScratch();
        var config = Captured(s, "42 26 7:0 / /srv/db rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n", EmergencyRo,
            $"  - {{type: syslog, socket: \"{s.PathOf("no-syslog")}\"}}", listen: "127.0.0.1:0");
        var exe = Path.Combine(AppContext.BaseDirectory, "vrescue");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "guard", "run", "--config", config })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        s.OnDispose(() =>
        {
            if (!p.HasExited)
            {
                p.Kill();
            }
        });
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();

        Assert.True(KernelScratch.WaitFor(() => lines.Any(l => l.StartsWith("vrescue guard: CRITICAL", StringComparison.Ordinal)), TimeSpan.FromSeconds(30)), string.Join('\n', lines));
        var url = lines.Select(l => l.StartsWith("vrescue guard: metrics at ", StringComparison.Ordinal) ? l[26..] : null).Single(l => l is not null)!;
        Assert.Matches(@"^http://127\.0\.0\.1:[1-9]\d*/metrics$", url);
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(url);
        Assert.Contains("vrescue_guard_filesystem_state{mountpoint=\"/srv/db\",device=\"loop0\",fstype=\"ext4\",state=\"shutdown\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("vrescue_guard_alerts_spooled 1", metrics, StringComparison.Ordinal);

        Assert.Equal(0, Kill(p.Id, 15));
        Assert.True(p.WaitForExit(15_000), "no exit within 15 s of SIGTERM");
        Assert.Equal(0, p.ExitCode);
        Assert.Contains(lines, l => l == "vrescue guard: SIGTERM, stopping after this cycle");
        Assert.Contains(lines, l => l == "vrescue guard: stopped");
        Assert.Single(Directory.GetFiles(s.PathOf("state/spool")));
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public void Install_puts_binary_config_and_units_under_the_given_dirs_and_keeps_an_existing_config()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var s = new KernelScratch();
        var binary = s.PathOf("vrescue-single");
        File.WriteAllText(binary, "#!/bin/sh\necho fake\n");
        var root = s.PathOf("root");
        string[] args = ["guard", "install", "--binary", binary, "--prefix", root + "/usr/local", "--config-dir", root + "/etc/vrescue", "--systemd-dir", root + "/etc/systemd/system"];
        var r = Cli.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("#!/bin/sh\necho fake\n", File.ReadAllText(root + "/usr/local/bin/vrescue"));
        Assert.True(File.GetUnixFileMode(root + "/usr/local/bin/vrescue").HasFlag(UnixFileMode.UserExecute));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(root + "/etc/vrescue/guard.yaml"));
        var service = File.ReadAllText(root + "/etc/systemd/system/vrescue-guard.service");
        Assert.Contains($"ExecStart={root}/usr/local/bin/vrescue guard run --config {root}/etc/vrescue/guard.yaml\n", service, StringComparison.Ordinal);
        Assert.Contains("Type=notify", service, StringComparison.Ordinal);
        Assert.Contains($"ExecStart={root}/usr/local/bin/vrescue guard run --once --config {root}/etc/vrescue/guard.yaml\n", File.ReadAllText(root + "/etc/systemd/system/vrescue-guard-once.service"), StringComparison.Ordinal);
        Assert.Contains("OnUnitActiveSec=1min", File.ReadAllText(root + "/etc/systemd/system/vrescue-guard-once.timer"), StringComparison.Ordinal);
        Assert.Contains("systemctl daemon-reload && systemctl enable --now vrescue-guard.service", r.Stdout, StringComparison.Ordinal);

        File.WriteAllText(root + "/etc/vrescue/guard.yaml", "# mine\n");
        var again = Cli.Run(args);
        Assert.Contains("kept (exists; --force replaces it)", again.Stdout, StringComparison.Ordinal);
        Assert.Equal("# mine\n", File.ReadAllText(root + "/etc/vrescue/guard.yaml"));
        Cli.Run([.. args, "--force"]);
        Assert.Contains("channels:", File.ReadAllText(root + "/etc/vrescue/guard.yaml"), StringComparison.Ordinal);
        Assert.Equal(["guard.yaml"], Directory.GetFiles(root + "/etc/vrescue").Select(Path.GetFileName));
    }

    [RealFact("systemd-analyze")]
    public void Installed_units_pass_systemd_analyze_verify()
    {
        using var s = new KernelScratch();
        var binary = s.PathOf("vrescue-single");
        File.WriteAllText(binary, "#!/bin/sh\n");
        var units = s.PathOf("units");
        Assert.Equal(0, Cli.Run("guard", "install", "--binary", binary, "--prefix", s.PathOf("usr"), "--config-dir", s.PathOf("etc"), "--systemd-dir", units).ExitCode);
        var psi = new ProcessStartInfo("systemd-analyze") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("verify");
        foreach (var u in Directory.GetFiles(units).Order(StringComparer.Ordinal))
        {
            psi.ArgumentList.Add(u);
        }

        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, output);
    }
}
