// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Text.Json;
using VRescue.TestSupport;
using static VRescue.Cli.Tests.Guard.GuardRunSupport;

namespace VRescue.Cli.Tests.Guard;

/// <summary>
/// `vrescue guard run --once` cycles against real faults on this machine's kernel, delivering to real receivers:
/// aiosmtpd on loopback (Debian python3-aiosmtpd) and an HttpListener webhook. Each test watches only its own mount.
/// </summary>
public sealed class GuardRunRealKernelTests
{
    private static (string Dev, string Mnt, string Trigger) Ext4OverFailingNbd(KernelScratch s)
    {
        var fuse = Directory.CreateDirectory(s.PathOf("fuse")).FullName;
        var trigger = s.PathOf("TRIGGER");
        s.Start("nbdfuse", fuse, "--command", "nbdkit", "-s", "--filter=error", "memory", "64M", "error=EIO", "error-rate=1", "error-file=" + trigger);
        s.OnDispose(() => KernelScratch.Run("fusermount3", "-u", fuse));
        var backing = Path.Combine(fuse, "nbd");
        Assert.True(KernelScratch.WaitFor(() => File.Exists(backing), TimeSpan.FromSeconds(15)), "nbdfuse did not expose " + backing);
        var dev = s.Loop(backing);
        KernelScratch.Run("mkfs.ext4", "-q", "-F", dev);
        return (dev, s.Mount(s.PathOf("mnt"), "-t", "ext4", "-o", "errors=remount-ro", dev), trigger);
    }

    // Data write errors alone do not stop ext4; the next metadata operation finds the aborted journal (brief §2.1).
    private static void WriteUntilStopped(string mnt, string dev)
    {
        var i = 0;
        Assert.True(KernelScratch.WaitFor(() =>
        {
            try
            {
                using var f = new FileStream(Path.Combine(mnt, $"f{i++}"), FileMode.Create);
                f.Write(new byte[1 << 20]);
                f.Flush(flushToDisk: true);
            }
            catch (IOException)
            {
            }

            var info = File.ReadAllText("/proc/self/mountinfo");
            return info.Contains($"ext4 {dev} rw,errors=remount-ro,emergency_ro", StringComparison.Ordinal) || info.Contains($"ext4 {dev} ro", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30)), "ext4 did not stop writes after the injected EIO");
    }

    private static int RunTool(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode;
    }

    [RealFact("mkfs.ext4", "e2fsck", "losetup", "nbdkit", "nbdfuse", "fusermount3", "promtool", GuardRunSupport.Python, Root = true)]
    public void Real_io_failure_reaches_smtp_once_flips_the_metric_and_the_all_clear_follows_fsck()
    {
        using var s = new KernelScratch();
        var port = FreePort();
        var maildir = StartSmtp(s, port);
        var (dev, mnt, trigger) = Ext4OverFailingNbd(s);
        var name = Path.GetFileName(dev);
        var config = Config(s, mnt, Smtp(port));

        var healthy = Once(config);
        Assert.StartsWith("GUARD OK: 1 watched; 0 new alert(s)", healthy.Stdout.Split('\n')[^2], StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_filesystem_writable{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"ext4\"}} 1\n", Metrics(s), StringComparison.Ordinal);

        File.WriteAllText(trigger, "");
        WriteUntilStopped(mnt, dev);
        // The kernel may still be printing the journal abort when writes already fail; the mail quotes those lines,
        // so wait until they are in the log (the daemon itself waits 2 s after a kernel line for the same reason).
        Assert.True(KernelScratch.WaitFor(() =>
        {
            var log = KernelScratch.Run("dmesg");
            return log.Contains($"Aborting journal on device {name}-8.", StringComparison.Ordinal)
                && log.Contains($"I/O error, dev {name}, sector", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30)), "the kernel did not log the journal abort and the I/O error");
        var fault = Once(config);
        Assert.Contains("1 new alert(s), 1 delivered", fault.Stdout, StringComparison.Ordinal);
        Once(config);
        Once(config);

        var mail = Assert.Single(Received(maildir));
        Assert.Equal("ops@example.com", mail.Header("X-RcptTo"));
        Assert.StartsWith($"[vrescue-guard] CRITICAL guest-test: {mnt} ({name}) shut down", mail.Header("Subject"), StringComparison.Ordinal);
        Assert.Contains($"mount point: {mnt}", mail.Body, StringComparison.Ordinal);
        Assert.Contains($"device:      {name} (source {dev}, ext4)", mail.Body, StringComparison.Ordinal);
        Assert.Contains("first error: ", mail.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("first error: none", mail.Body, StringComparison.Ordinal);
        Assert.Contains($"Aborting journal on device {name}-8.", mail.Body, StringComparison.Ordinal);
        // Not "Remounting filesystem read-only": the kernel prints it after emergency_ro is already visible, so a
        // check that runs at once can precede it by milliseconds (the daemon waits 2 s after a kernel line).
        Assert.Matches(@"first error: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ in ext4_", mail.Body);
        Assert.Contains($"I/O error, dev {name}, sector", mail.Body, StringComparison.Ordinal);

        var metrics = Metrics(s);
        Assert.Contains($"vrescue_guard_filesystem_writable{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"ext4\"}} 0\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_filesystem_state{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"ext4\",state=\"shutdown\"}} 1\n", metrics, StringComparison.Ordinal);
        Assert.Equal(0, RunTool("sh", "-c", $"promtool check metrics < '{s.PathOf("prom/vrescue_guard.prom")}'"));

        // Recovery as the advice says: storage back, unmount, fsck, mount.
        File.Delete(trigger);
        KernelScratch.Run("umount", mnt);
        Assert.True(RunTool("e2fsck", "-fy", dev) is 0 or 1, "e2fsck could not repair");
        KernelScratch.Run("mount", "-t", "ext4", "-o", "errors=remount-ro", dev, mnt);
        var clear = Once(config);
        Assert.Contains("1 new alert(s), 1 delivered", clear.Stdout, StringComparison.Ordinal);
        var mails = Received(maildir);
        Assert.Equal(2, mails.Count);
        Assert.StartsWith($"[vrescue-guard] OK guest-test: all clear: {mnt} ({name}) is writable again (was shut down)", mails[1].Header("Subject"), StringComparison.Ordinal);
        Assert.Contains($"vrescue_guard_filesystem_writable{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"ext4\"}} 1\n", Metrics(s), StringComparison.Ordinal);
        KernelScratch.Run("umount", "-l", mnt);
    }

    [RealFact("mkfs.ext4", "losetup", GuardRunSupport.Python, Root = true)]
    public void Smtp_down_while_the_fault_happens_then_up_delivers_the_alert_once()
    {
        using var s = new KernelScratch();
        var port = FreePort();
        var dev = s.Loop(s.Image("ext4.img", 32));
        KernelScratch.Run("mkfs.ext4", "-q", "-F", dev);
        var mnt = s.Mount(s.PathOf("mnt"), "-t", "ext4", "-o", "errors=remount-ro", dev);
        var config = Config(s, mnt, Smtp(port));
        Once(config);

        File.WriteAllText($"/sys/fs/ext4/{Path.GetFileName(dev)}/trigger_fs_error", "vrescue smtp-down test\n");
        var down = Once(config);
        Assert.Contains("-> smtp: failed", down.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 waiting in the spool", down.Stdout, StringComparison.Ordinal);
        var spooled = Assert.Single(Directory.GetFiles(s.PathOf("state/spool")));
        var id = JsonDocument.Parse(File.ReadAllText(spooled)).RootElement.GetProperty("alert").GetProperty("id").GetString()!;
        Assert.Contains("vrescue_guard_alerts_spooled 1\n", Metrics(s), StringComparison.Ordinal);

        var maildir = StartSmtp(s, port);
        var up = Once(config);
        Assert.Contains($"alert {id} -> smtp: delivered after 1 failed attempt(s)", up.Stdout, StringComparison.Ordinal);
        Once(config);
        Once(config);
        var mail = Assert.Single(Received(maildir));
        Assert.StartsWith($"<{id}.problem@vrescue-guard.", mail.Header("Message-ID"), StringComparison.Ordinal);
        Assert.Contains("trigger_test_error", mail.Body, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(s.PathOf("state/spool")));
        Assert.Contains("vrescue_guard_alerts_spooled 0\n", Metrics(s), StringComparison.Ordinal);
    }

    [RealFact("mkfs.ext4", "losetup", Root = true)]
    public void Ext4_errors_continue_with_a_rising_error_count_alerts_problem_then_worse_by_webhook()
    {
        using var s = new KernelScratch();
        using var hook = new WebhookSink();
        var dev = s.Loop(s.Image("ext4.img", 32));
        var name = Path.GetFileName(dev);
        KernelScratch.Run("mkfs.ext4", "-q", "-F", dev);
        var mnt = s.Mount(s.PathOf("mnt"), "-t", "ext4", "-o", "errors=continue", dev);
        var config = Config(s, mnt, $"  - {{type: webhook, url: \"{hook.Url}\"}}");
        Once(config);

        var trigger = $"/sys/fs/ext4/{name}/trigger_fs_error";
        File.WriteAllText(trigger, "first\n");
        Once(config);
        File.WriteAllText(Path.Combine(mnt, "still-writable"), "yes");
        Once(config);
        File.WriteAllText(trigger, "second\n");
        Once(config);

        Assert.True(KernelScratch.WaitFor(() => hook.Bodies.Count >= 2, TimeSpan.FromSeconds(5)));
        var alerts = hook.Bodies.Select(b => JsonDocument.Parse(b).RootElement).ToList();
        Assert.Equal(["problem", "worse"], alerts.Select(a => a.GetProperty("kind").GetString()));
        Assert.Equal([1, 2], alerts.Select(a => a.GetProperty("ext4ErrorCount").GetInt32()));
        Assert.All(alerts, a => Assert.Equal("errors", a.GetProperty("state").GetString()));
        Assert.Equal("continue", alerts[1].GetProperty("errorsBehaviour").GetString());
        Assert.Contains($"vrescue_guard_ext4_errors_total{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"ext4\"}} 2\n", Metrics(s), StringComparison.Ordinal);
    }

    [RealFact("mkfs.btrfs", "losetup", "nbdkit", "nbdfuse", "fusermount3", Root = true)]
    public void Btrfs_forced_read_only_after_real_write_errors_is_alerted_and_in_the_metrics()
    {
        using var s = new KernelScratch();
        using var hook = new WebhookSink();
        var fuse = Directory.CreateDirectory(s.PathOf("fuse")).FullName;
        var trigger = s.PathOf("TRIGGER");
        s.Start("nbdfuse", fuse, "--command", "nbdkit", "-s", "--filter=error", "memory", "256M", "error=EIO", "error-rate=1", "error-file=" + trigger);
        s.OnDispose(() => KernelScratch.Run("fusermount3", "-u", fuse));
        Assert.True(KernelScratch.WaitFor(() => File.Exists(Path.Combine(fuse, "nbd")), TimeSpan.FromSeconds(15)));
        var dev = s.Loop(Path.Combine(fuse, "nbd"));
        var name = Path.GetFileName(dev);
        KernelScratch.Run("mkfs.btrfs", "-q", "-f", dev);
        var mnt = s.Mount(s.PathOf("mnt"), "-t", "btrfs", dev);
        var config = Config(s, mnt, $"  - {{type: webhook, url: \"{hook.Url}\"}}");
        Once(config);

        File.WriteAllText(trigger, "");
        Assert.True(KernelScratch.WaitFor(() =>
        {
            try
            {
                File.WriteAllBytes(Path.Combine(mnt, $"f{Environment.TickCount64}"), new byte[1 << 20]);
                KernelScratch.Run("sync", "-f", mnt);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }

            return File.ReadAllText("/proc/self/mountinfo").Contains($"btrfs {dev} ro,", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30)), "btrfs did not force itself read-only");

        Once(config);
        Once(config);
        Assert.True(KernelScratch.WaitFor(() => !hook.Bodies.IsEmpty, TimeSpan.FromSeconds(5)));
        var alert = JsonDocument.Parse(Assert.Single(hook.Bodies)).RootElement;
        Assert.Equal("read-only", alert.GetProperty("state").GetString());
        Assert.Equal("critical", alert.GetProperty("severity").GetString());
        Assert.Contains(alert.GetProperty("kernelLines").EnumerateArray(), l => l.GetString()!.Contains($"BTRFS info (device {name}", StringComparison.Ordinal) && l.GetString()!.Contains("forced readonly", StringComparison.Ordinal));
        Assert.Contains($"vrescue_guard_filesystem_state{{mountpoint=\"{mnt}\",device=\"{name}\",fstype=\"btrfs\",state=\"read-only\"}} 1\n", Metrics(s), StringComparison.Ordinal);
    }
}
