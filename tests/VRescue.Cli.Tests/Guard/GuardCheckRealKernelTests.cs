// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Guard;

/// <summary>
/// `vrescue guard check` against this machine's real kernel: real filesystems on loop devices, real faults. Each test
/// checks only its own mount points (--mount) and an empty fstab, so other mounts on the host do not interfere; the
/// kernel log is the live /dev/kmsg.
/// </summary>
public sealed class GuardCheckRealKernelTests
{
    private static (Cli.Result Nagios, JsonElement Mount, Cli.Result Human) Check(KernelScratch s, string mountPoint, params string[] extra)
    {
        var fstab = s.PathOf("fstab");
        File.WriteAllText(fstab, "");
        string[] common = ["guard", "check", "--mount", mountPoint, "--fstab", fstab, .. extra];
        var nagios = Cli.Run([.. common, "--nagios"]);
        var json = Cli.Run([.. common, "--json"]);
        var mount = json.Json.GetProperty("mounts").EnumerateArray().Single();
        return (nagios, mount, Cli.Run(common));
    }

    private static string MountedExt4(KernelScratch s, string mountPoint, string options, string sizeMiB = "32")
    {
        var dev = s.Loop(s.Image("ext4.img", int.Parse(sizeMiB, System.Globalization.CultureInfo.InvariantCulture)));
        KernelScratch.Run("mkfs.ext4", "-q", "-F", dev);
        s.Mount(mountPoint, "-t", "ext4", "-o", options, dev);
        return dev;
    }

    [RealFact("mkfs.ext4", "losetup", Root = true)]
    public void Ext4_trigger_fs_error_is_critical_with_device_mount_point_and_first_error()
    {
        using var s = new KernelScratch();
        var mnt = s.PathOf("mnt");
        var dev = MountedExt4(s, mnt, "errors=remount-ro");
        var name = Path.GetFileName(dev);
        var trigger = $"/sys/fs/ext4/{name}/trigger_fs_error";
        Assert.True(File.Exists(trigger), $"{trigger} missing: this kernel cannot inject an ext4 error");
        File.WriteAllText(trigger, "vrescue test\n");

        var (nagios, mount, human) = Check(s, mnt, "--write-probe");
        Assert.Equal(2, nagios.ExitCode);
        Assert.StartsWith("GUARD CRITICAL: " + mnt, nagios.Stdout, StringComparison.Ordinal);
        Assert.Contains("'critical'=1;;1;0;", nagios.Stdout, StringComparison.Ordinal);

        Assert.Equal(name, mount.GetProperty("deviceName").GetString());
        Assert.Equal(mnt, mount.GetProperty("mountPoint").GetString());
        var sysfs = mount.GetProperty("ext4Sysfs");
        Assert.Equal(1, sysfs.GetProperty("errorCount").GetInt32());
        Assert.Equal("trigger_test_error", sysfs.GetProperty("firstError").GetProperty("function").GetString());
        // The kernel commits the error to the on-disk superblock at once (ext4_commit_super), so dumpe2fs agrees.
        Assert.Equal("trigger_test_error", mount.GetProperty("ext4Superblock").GetProperty("firstError").GetProperty("function").GetString());
        Assert.Matches(@"First error function:\s+trigger_test_error", KernelScratch.Run("dumpe2fs", "-h", dev));
        Assert.Equal("read-only", mount.GetProperty("probe").GetProperty("outcome").GetString());
        Assert.Contains(mount.GetProperty("kernelLines").EnumerateArray(), l => l.GetString()!.Contains($"EXT4-fs error (device {name}): trigger_test_error", StringComparison.Ordinal));

        Assert.Equal(2, human.ExitCode);
        Assert.Contains("first error", human.Stdout, StringComparison.Ordinal);
        Assert.Contains("trigger_test_error:", human.Stdout, StringComparison.Ordinal);
        Assert.Contains($"e2fsck -f {dev}", human.Stdout, StringComparison.Ordinal);
    }

    [RealFact("mkfs.ext4", "losetup", "nbdkit", "nbdfuse", "fusermount3", Root = true)]
    public void Real_io_failure_under_ext4_is_critical_with_the_kernel_lines()
    {
        using var s = new KernelScratch();
        var fuse = Directory.CreateDirectory(s.PathOf("fuse")).FullName;
        var trigger = s.PathOf("TRIGGER");
        s.Start("nbdfuse", fuse, "--command", "nbdkit", "-s", "--filter=error", "memory", "64M", "error=EIO", "error-rate=1", "error-file=" + trigger);
        s.OnDispose(() => KernelScratch.Run("fusermount3", "-u", fuse));
        var backing = Path.Combine(fuse, "nbd");
        Assert.True(KernelScratch.WaitFor(() => File.Exists(backing), TimeSpan.FromSeconds(15)), "nbdfuse did not expose " + backing);

        var dev = s.Loop(backing);
        var name = Path.GetFileName(dev);
        KernelScratch.Run("mkfs.ext4", "-q", "-F", dev);
        var mnt = s.Mount(s.PathOf("mnt"), "-t", "ext4", "-o", "errors=remount-ro", dev);
        var (before, _, _) = Check(s, mnt);
        Assert.Equal(0, before.ExitCode);

        File.WriteAllText(trigger, "");
        // Data write errors alone do not stop ext4; the next metadata operation finds the aborted journal (brief §2.1).
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

            return File.ReadAllText("/proc/self/mountinfo").Contains($"ext4 {dev} rw,errors=remount-ro,emergency_ro", StringComparison.Ordinal)
                || File.ReadAllText("/proc/self/mountinfo").Contains($"ext4 {dev} ro", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30)), "ext4 did not stop writes after the injected EIO");

        var (nagios, mount, human) = Check(s, mnt);
        Assert.Equal(2, nagios.ExitCode);
        Assert.StartsWith("GUARD CRITICAL: " + mnt, nagios.Stdout, StringComparison.Ordinal);
        var lines = mount.GetProperty("kernelLines").EnumerateArray().Select(l => l.GetString()!).ToList();
        Assert.Contains(lines, l => l.Contains($"Aborting journal on device {name}-8.", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"EXT4-fs ({name}): Remounting filesystem read-only", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"I/O error, dev {name}, sector", StringComparison.Ordinal) || l.Contains($"Buffer I/O error on dev", StringComparison.Ordinal));
        var codes = mount.GetProperty("problems").EnumerateArray().Select(p => p.GetProperty("code").GetString()).ToList();
        Assert.Contains("guard.kernel.journal-aborted", codes);
        Assert.Contains("guard.kernel.block-io-error", codes);
        Assert.True(mount.GetProperty("ext4Sysfs").GetProperty("errorCount").GetInt32() >= 1);
        Assert.Contains("Aborting journal", human.Stdout, StringComparison.Ordinal);
        Assert.Contains("storage underneath returned I/O errors", human.Stdout, StringComparison.Ordinal);
    }

    [RealFact("mkfs.xfs", "xfs_io", "losetup", Root = true)]
    public void Xfs_shutdown_is_critical_although_the_mount_table_still_says_rw()
    {
        using var s = new KernelScratch();
        var dev = s.Loop(s.Image("xfs.img", 320));
        KernelScratch.Run("mkfs.xfs", "-q", "-f", dev);
        var mnt = s.Mount(s.PathOf("mnt"), "-t", "xfs", dev);
        Assert.Equal(0, Check(s, mnt).Nagios.ExitCode);

        KernelScratch.Run("xfs_io", "-x", "-c", "shutdown", mnt);
        Assert.Contains($"xfs {dev} rw,", File.ReadAllText("/proc/self/mountinfo"), StringComparison.Ordinal);

        var (nagios, mount, _) = Check(s, mnt, "--write-probe");
        Assert.Equal(2, nagios.ExitCode);
        Assert.Equal("shutdown", mount.GetProperty("state").GetString());
        Assert.Equal("io-error", mount.GetProperty("probe").GetProperty("outcome").GetString());
        Assert.Contains(mount.GetProperty("kernelLines").EnumerateArray(), l => l.GetString()!.Contains("Shutting down filesystem", StringComparison.Ordinal));
        Assert.Contains(mount.GetProperty("advice").EnumerateArray(), a => a.GetString()!.Contains("xfs_repair " + dev, StringComparison.Ordinal));
    }

    [RealFact("mksquashfs", "mkfs.ext4", "losetup", Root = true)]
    public void Squashfs_ro_bind_and_a_mount_point_with_space_and_newline_are_not_alarmed()
    {
        using var s = new KernelScratch();
        var content = Directory.CreateDirectory(s.PathOf("content")).FullName;
        File.WriteAllText(Path.Combine(content, "a.txt"), "hello");
        KernelScratch.Run("mksquashfs", content, s.PathOf("sq.img"), "-noappend", "-quiet");
        var squash = s.Mount(s.PathOf("squash"), "-t", "squashfs", "-o", "ro", s.Loop(s.PathOf("sq.img")));

        var odd = s.PathOf("odd name\nwith newline");
        var dev = MountedExt4(s, odd, "errors=remount-ro");
        var bind = s.Mount(s.PathOf("ro bind"), "--bind", odd);
        KernelScratch.Run("mount", "-o", "remount,bind,ro", bind);
        File.WriteAllText(Path.Combine(odd, "still-writable"), "yes");

        var (sqNagios, sqMount, _) = Check(s, squash);
        Assert.True(sqNagios.ExitCode == 0, sqNagios.Stdout);
        Assert.Equal("intended-read-only", sqMount.GetProperty("state").GetString());

        var (bindNagios, bindMount, _) = Check(s, bind, "--write-probe");
        Assert.True(bindNagios.ExitCode == 0, bindNagios.Stdout);
        Assert.Equal("intended-read-only", bindMount.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, bindMount.GetProperty("probe").ValueKind);

        var (oddNagios, oddMount, oddHuman) = Check(s, odd, "--write-probe");
        Assert.True(oddNagios.ExitCode == 0, oddNagios.Stdout);
        Assert.StartsWith("GUARD OK: 1 filesystem(s)", oddNagios.Stdout, StringComparison.Ordinal);
        Assert.Single(oddNagios.Stdout.TrimEnd('\n').Split('\n'));
        Assert.Equal(odd, oddMount.GetProperty("mountPoint").GetString());
        Assert.Equal(Path.GetFileName(dev), oddMount.GetProperty("deviceName").GetString());
        Assert.Equal("writable", oddMount.GetProperty("probe").GetProperty("outcome").GetString());
        Assert.Contains("odd name\\nwith newline", oddHuman.Stdout, StringComparison.Ordinal);
        Assert.Equal(["still-writable"], Directory.GetFiles(odd).Select(Path.GetFileName)); // the probe left nothing
    }
}
