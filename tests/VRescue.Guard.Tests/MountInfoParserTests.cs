// SPDX-License-Identifier: MIT
using VRescue.Guard.Mounts;

namespace VRescue.Guard.Tests;

public class MountInfoParserTests
{
    // Lines as this kernel (6.18) printed them (research brief §2.2, §2.4), plus optional fields from systemd hosts.
    private const string Captured =
        "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n" +
        "42 26 7:0 / /mnt/e rw,relatime - ext4 /dev/loop0 rw,errors=remount-ro,emergency_ro\n" +
        "44 27 7:1 / /data/a\\040b\\011x\\134y ro,relatime - ext4 /dev/loop1 rw\n" +
        "45 26 0:52 / /mnt/b rw,relatime shared:7 master:3 propagate_from:2 - btrfs /dev/loop2 ro,discard=async,space_cache=v2,subvolid=5,subvol=/\n" +
        "46 26 7:3 / /mnt/new\\012line rw,relatime unbindable - xfs /dev/loop3 rw,inode64,logbufs=8,logbsize=32k,noquota\n";

    [Fact]
    public void Parse_keeps_per_mount_and_superblock_options_apart()
    {
        var t = MountInfoParser.Parse(Captured);
        Assert.Empty(t.Problems);
        Assert.Equal(5, t.Entries.Count);

        var bind = t.Entries[2];
        Assert.True(bind.IsMountReadOnly);
        Assert.False(bind.IsSuperReadOnly);

        var btrfs = t.Entries[3];
        Assert.False(btrfs.IsMountReadOnly);
        Assert.True(btrfs.IsSuperReadOnly);
        Assert.Equal(["shared:7", "master:3", "propagate_from:2"], btrfs.OptionalFields);
        Assert.Equal("0:52", btrfs.DeviceNumber);
    }

    [Fact]
    public void Options_are_exact_tokens_not_substrings()
    {
        var e = MountInfoParser.Parse(Captured).Entries[1];
        Assert.True(e.HasSuperOption("emergency_ro"));
        Assert.False(e.IsSuperReadOnly); // errors=remount-ro and emergency_ro are not "ro"
        Assert.Equal("remount-ro", e.SuperOptionValue("errors"));
        Assert.Null(e.SuperOptionValue("error"));
    }

    [Fact]
    public void Octal_escapes_for_space_tab_backslash_and_newline_are_decoded()
    {
        var t = MountInfoParser.Parse(Captured);
        Assert.Equal("/data/a b\tx\\y", t.Entries[2].MountPoint);
        Assert.Equal("/mnt/new\nline", t.Entries[4].MountPoint);
        Assert.Equal("\\ not escaped \\9", MountInfoParser.Unescape("\\ not escaped \\9"));
        Assert.Equal("é", MountInfoParser.Unescape("\\303\\251"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("26 1 254:0 / / rw,relatime")]
    [InlineData("26 1 254:0 / / rw,relatime shared:1 ext4 /dev/vda rw")]
    [InlineData("x 1 254:0 / / rw - ext4 /dev/vda rw")]
    [InlineData("26 1 254-0 / / rw - ext4 /dev/vda rw")]
    [InlineData("26 1 254:0 / / rw - ext4 /dev/vda rw extra")]
    [InlineData("99999999999 1 1:1 / / rw - ext4 /dev/vda rw")]
    public void Malformed_lines_are_reported_not_thrown(string line)
    {
        var t = MountInfoParser.Parse(line + "\n" + "26 1 254:0 / / rw - ext4 /dev/vda rw\n");
        Assert.Single(t.Entries);
        Assert.Equal(line.Length == 0 ? 0 : 1, t.Problems.Count);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var rng = new Random(5);
        for (var i = 0; i < 2000; i++)
        {
            var chars = new char[rng.Next(0, 120)];
            for (var j = 0; j < chars.Length; j++)
            {
                chars[j] = " -:\\0123456789abc,\n"[rng.Next(19)];
            }

            _ = MountInfoParser.Parse(new string(chars));
        }
    }

    [Fact]
    public void Fstab_parses_escapes_comments_and_ro()
    {
        var entries = FstabParser.Parse("# c\nUUID=1 / ext4 errors=remount-ro 0 1\n/dev/sr0 /media/cd\\040rom iso9660 ro,user 0 0\n\n/srv /mnt/ro/ none bind,ro\nbroken line\n");
        Assert.Equal(3, entries.Count);
        Assert.False(entries[0].IsReadOnly);
        Assert.Equal("/media/cd rom", entries[1].MountPoint);
        Assert.True(entries[1].IsReadOnly);
        Assert.Equal("/mnt/ro", entries[2].MountPoint);
    }
}
