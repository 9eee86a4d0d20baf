// SPDX-License-Identifier: MIT
namespace VRescue.Cli.Tests.Guard;

/// <summary>Real command strings on captured inputs (no root needed).</summary>
public sealed class GuardCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    private string[] Captured(string mountInfo, string kmsg) =>
    [
        "--mountinfo", Write("mountinfo", mountInfo), "--kmsg", Write("kmsg", kmsg), "--fstab", Write("fstab", ""),
        "--sysfs", _dir.FullName, "--proc", _dir.FullName, "--dev", _dir.FullName,
    ];

    [Fact]
    public void Check_on_captured_emergency_ro_exits_2_with_one_nagios_status_line()
    {
        var r = Cli.Run(["guard", "check", "--nagios", .. Captured(
            "42 26 7:0 / /srv/db\\040data rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n",
            "6,1,1,-;EXT4-fs (loop0): mounted filesystem x r/w with ordered data mode.\n3,2,2,-;EXT4-fs error (device loop0): ext4_journal_check_start:87: comm touch: Detected aborted journal\n")]);
        Assert.Equal(2, r.ExitCode);
        var first = r.Stdout.Split('\n')[0];
        Assert.Equal("GUARD CRITICAL: /srv/db data shut down | 'checked'=1;;;0; 'critical'=1;;1;0; 'warning'=0;1;;0; 'ext4_errors'=0c", first);
    }

    [Fact]
    public void Check_on_a_healthy_captured_table_exits_0_and_json_names_states_in_kebab_case()
    {
        var args = Captured("26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n44 26 254:0 / /ro ro,relatime - ext4 /dev/vda rw\n", "");
        Assert.Equal(0, Cli.Run(["guard", "check", .. args]).ExitCode);
        var json = Cli.Run(["guard", "check", "--json", .. args]);
        Assert.Equal("ok", json.Json.GetProperty("status").GetString());
        Assert.Equal("intended-read-only", json.Json.GetProperty("mounts")[1].GetProperty("state").GetString());
    }

    [Fact]
    public void Unreadable_mount_table_is_unknown_exit_3()
    {
        var r = Cli.Run("guard", "check", "--nagios", "--mountinfo", Path.Combine(_dir.FullName, "missing"), "--kmsg", "none");
        Assert.Equal(3, r.ExitCode);
        Assert.StartsWith("GUARD UNKNOWN: ", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Advise_writes_the_udev_rule_only_to_the_given_path()
    {
        var target = Path.Combine(_dir.FullName, "rules.d", "99-test.rules");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var r = Cli.Run("guard", "advise", "--timeout", "300", "--write-udev-rule", target, "--sysfs", _dir.FullName);
        Assert.Equal(0, r.ExitCode);
        var rule = File.ReadAllText(target);
        Assert.Contains("SUBSYSTEM==\"scsi\", ENV{DEVTYPE}==\"scsi_device\", ATTR{type}==\"0|7|14\", ATTR{timeout}=\"300\"", rule, StringComparison.Ordinal);
        Assert.Equal(["99-test.rules"], Directory.GetFiles(Path.GetDirectoryName(target)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Advise_flags_a_scsi_disk_below_the_floor()
    {
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "block", "sdb", "device"));
        File.WriteAllText(Path.Combine(_dir.FullName, "block", "sdb", "device", "timeout"), "30\n");
        var r = Cli.Run("guard", "advise", "--sysfs", _dir.FullName);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("sdb", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("TOO SHORT", r.Stdout, StringComparison.Ordinal);
    }
}
