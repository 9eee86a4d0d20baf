// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Check;

namespace VRescue.Guard.Tests;

/// <summary>The whole check over captured text and a small fake sysfs tree, so every rule runs without root.</summary>
public sealed class GuardCheckerCapturedTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-captured-");

    private const string MountInfo =
        "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n" +
        "27 26 0:5 / /proc rw - proc proc rw\n" +
        "42 26 7:0 / /mnt/e rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n" +
        "43 26 7:1 / /mnt/old rw,relatime - ext3 /dev/loop1 ro,errors=remount-ro\n" +
        "44 26 7:1 / /srv/ro\\040bind ro,relatime - ext3 /dev/loop1 ro,errors=remount-ro\n" +
        "45 26 7:2 / /mnt/xfs rw,relatime - xfs /dev/loop2 rw,inode64\n" +
        "46 26 7:3 / /snap/core/1 ro,nodev,relatime - squashfs /dev/loop3 ro\n" +
        "47 26 7:4 / /media/cd ro,relatime - iso9660 /dev/loop4 ro\n" +
        "48 26 7:5 / /var/lib/mysql ro,relatime - ext4 /dev/loop5 ro\n" +
        "49 26 7:6 / /mnt/a\\012b rw,relatime - ext4 /dev/loop6 rw\n" +
        "50 26 7:7 / /mnt/cont rw,relatime - ext4 /dev/loop7 rw,errors=continue\n" +
        "51 26 7:8 / /opt/image ro,relatime - squashfs /dev/loop8 ro\n" +
        "52 26 7:9 / /mnt/reused rw,relatime - ext4 /dev/loop9 rw\n";

    // loop2 had an XFS shutdown in an older mount; the current mount (second marker) is clean until its own shutdown.
    private const string Kmsg =
        "6,1,1000000,-;XFS (loop2): Mounting V5 Filesystem aa\n" +
        "2,2,1100000,-;XFS (loop2): Corruption of in-memory data detected.  Shutting down filesystem\n" +
        "6,2,1150000,-;XFS (loop2): Mounting V5 Filesystem aa\n" +
        "6,3,1200000,-;EXT4-fs (loop6): mounted filesystem bb r/w with ordered data mode.\n" +
        "3,4,1250000,-;EXT4-fs error (device loop6): old_error:1: comm x: before this mount\n" +
        "6,5,1300000,-;EXT4-fs (loop6): mounted filesystem bb r/w with ordered data mode.\n" +
        "3,6,2000000,-;I/O error, dev loop0, sector 2 op 0x1:(WRITE) flags 0x3800 phys_seg 1 prio class 2\n" +
        "3,7,2100000,-;Aborting journal on device loop0-8.\n" +
        "3,8,2200000,-;EXT4-fs (loop0): Remounting filesystem read-only\n" +
        "3,9,2300000,-;I/O error, dev sdz, sector 9 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n" +
        "3,10,2400000,-;EXT4-fs error (device loop8): ext4_lookup:1855: comm ls: from the loop device's previous user\n" +
        "3,11,2500000,-;Buffer I/O error on dev loop9, logical block 3, lost async page write\n" +
        "6,12,2600000,-;loop9: detected capacity change from 0 to 65536\n";

    private const string Fstab = "/dev/loop5 /var/lib/mysql ext4 defaults 0 2\n";

    public GuardCheckerCapturedTests()
    {
        File.WriteAllText(Path("mountinfo"), MountInfo);
        File.WriteAllText(Path("kmsg"), Kmsg);
        File.WriteAllText(Path("fstab"), Fstab);
        for (var minor = 0; minor < 8; minor++)
        {
            var dev = Directory.CreateDirectory(Path($"sys/devices/virtual/block/loop{minor}"));
            Directory.CreateDirectory(Path("sys/dev/block"));
            File.CreateSymbolicLink(Path($"sys/dev/block/7:{minor}"), dev.FullName);
        }

        var ext4 = Directory.CreateDirectory(Path("sys/fs/ext4/loop7")).FullName;
        File.WriteAllText(System.IO.Path.Combine(ext4, "errors_count"), "3\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "first_error_time"), "1795320521\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "first_error_func"), "ext4_lookup\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "first_error_line"), "1855\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "first_error_ino"), "12\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "first_error_errcode"), "5\n");
        File.WriteAllText(System.IO.Path.Combine(ext4, "last_error_time"), "0\n");
        var xfs = Directory.CreateDirectory(Path("sys/fs/xfs/loop2/error/metadata/EIO")).FullName;
        File.WriteAllText(System.IO.Path.Combine(xfs, "max_retries"), "-1\n");
        File.WriteAllText(System.IO.Path.Combine(xfs, "retry_timeout_seconds"), "-1\n");
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private string Path(string name) => System.IO.Path.Combine(_dir.FullName, name);

    private GuardReport Run(GuardRules? rules = null) => new GuardChecker(rules ?? new GuardRules(), new GuardInputs
    {
        MountInfoPath = Path("mountinfo"),
        KmsgPath = Path("kmsg"),
        FstabPath = Path("fstab"),
        SysfsRoot = Path("sys"),
        ProcRoot = Path("proc"),
        DevRoot = Path("dev"),
    }).Run();

    private static MountReport Mount(GuardReport r, string mountPoint) => r.Mounts.Single(m => m.MountPoint == mountPoint);

    [Fact]
    public void Emergency_ro_with_aborted_journal_is_critical_with_kernel_lines_and_advice()
    {
        var r = Run();
        Assert.Equal(GuardStatus.Critical, r.Status);
        var m = Mount(r, "/mnt/e");
        Assert.Equal(MountState.Shutdown, m.State); // the aborted journal outranks emergency_ro
        Assert.Contains(m.Problems, p => p.Code == "guard.mount.emergency-ro" && p.Severity == Severity.Error);
        Assert.Contains(m.Problems, p => p.Code == "guard.kernel.journal-aborted");
        Assert.Contains(m.Problems, p => p.Code == "guard.kernel.block-io-error");
        Assert.Equal(3, m.KernelLineCount);
        Assert.Contains(m.KernelLines, l => l.Contains("Remounting filesystem read-only", StringComparison.Ordinal));
        Assert.Equal("remount-ro", m.ErrorsBehaviour);
        Assert.Contains(m.Advice, a => a.Contains("e2fsck -f /dev/loop0", StringComparison.Ordinal));
        Assert.Contains(m.Advice, a => a.Contains("I/O errors (loop0)", StringComparison.Ordinal));
    }

    [Fact]
    public void Superblock_ro_under_a_rw_mount_is_critical_but_the_ro_bind_of_it_is_intended()
    {
        var r = Run();
        Assert.Equal(MountState.ReadOnly, Mount(r, "/mnt/old").State);
        Assert.Contains(Mount(r, "/mnt/old").Problems, p => p.Code == "guard.mount.super-ro");
        Assert.Equal(MountState.IntendedReadOnly, Mount(r, "/srv/ro bind").State);
        Assert.Empty(Mount(r, "/srv/ro bind").Problems);
    }

    [Fact]
    public void Xfs_shutdown_from_an_earlier_mount_is_not_blamed_on_the_current_one()
    {
        var m = Mount(Run(), "/mnt/xfs");
        Assert.Equal(MountState.Writable, m.State);
        Assert.Empty(m.Problems);
        Assert.True(m.Xfs!.RetriesForever);
    }

    [Fact]
    public void Media_snaps_and_pseudo_filesystems_are_not_alarms()
    {
        var r = Run();
        Assert.DoesNotContain(r.Mounts, m => m.MountPoint is "/proc" or "/snap/core/1");
        Assert.Equal(MountState.IntendedReadOnly, Mount(r, "/media/cd").State);
        Assert.Equal(2, r.IgnoredMountCount);
    }

    [Fact]
    public void Read_only_mount_that_fstab_lists_rw_is_a_warning()
    {
        var m = Mount(Run(), "/var/lib/mysql");
        Assert.Equal(MountState.ReadOnlyAgainstFstab, m.State);
        Assert.Equal(Severity.Warning, m.Severity);
        Assert.Empty(Mount(Run(new GuardRules { ReadOnlyAgainstFstabSeverity = Severity.Info }), "/var/lib/mysql").Problems);
    }

    [Fact]
    public void Mount_point_with_a_newline_is_decoded_and_its_old_errors_are_cut_at_the_mount_line()
    {
        var m = Mount(Run(), "/mnt/a\nb");
        Assert.Equal("loop6", m.DeviceName);
        Assert.Empty(m.Problems);
    }

    [Fact]
    public void Lines_from_a_loop_device_s_previous_user_are_not_blamed_on_the_current_filesystem()
    {
        var r = Run();
        var squash = Mount(r, "/opt/image");
        Assert.Equal(MountState.IntendedReadOnly, squash.State); // squashfs logs no mount line; the ext4 wording cannot be about it
        Assert.Empty(squash.Problems);
        Assert.Empty(Mount(r, "/mnt/reused").Problems); // cut at "detected capacity change from 0"
    }

    [Fact]
    public void Errors_continue_with_recorded_errors_is_a_warning_with_first_error_and_advice()
    {
        var m = Mount(Run(), "/mnt/cont");
        Assert.Equal(MountState.Errors, m.State);
        var p = Assert.Single(m.Problems);
        Assert.Equal("guard.ext4.errors-recorded", p.Code);
        Assert.Contains("ext4_lookup:1855", p.Message, StringComparison.Ordinal);
        Assert.Contains("EFSCORRUPTED", p.Message, StringComparison.Ordinal);
        Assert.Equal(3U, m.Ext4Sysfs!.ErrorCount);
        Assert.Null(m.Ext4Sysfs.LastError);
        Assert.Contains(m.Advice, a => a.Contains("errors=continue", StringComparison.Ordinal));
    }

    [Fact]
    public void Lines_about_devices_nobody_mounted_are_kept_apart_and_do_not_raise_the_status()
    {
        var r = Run(new GuardRules { OnlyMountPoints = ["/mnt/xfs"] });
        Assert.Equal(GuardStatus.Ok, r.Status);
        Assert.Contains(r.OtherKernelLines, l => l.Contains("dev sdz", StringComparison.Ordinal));
    }

    [Fact]
    public void Nagios_output_is_one_status_line_with_perfdata_then_problems()
    {
        var text = NagiosOutput.Format(Run());
        var lines = text.TrimEnd('\n').Split('\n');
        Assert.StartsWith("GUARD CRITICAL: /mnt/e shut down", lines[0], StringComparison.Ordinal);
        Assert.Contains("| 'checked'=11;;;0; 'critical'=2;;1;0; 'warning'=2;1;;0; 'ext4_errors'=3c", lines[0], StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.Matches("^(CRITICAL|WARNING) ", l));
    }
}
