// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Formats.Ext;
using VRescue.Guard.Sysfs;
using VRescue.Storage;

namespace VRescue.Guard.Filesystems;

/// <summary>One recorded ext4 error (first or last): the s_first_error_* / s_last_error_* superblock fields.</summary>
public sealed record Ext4ErrorPoint(DateTimeOffset Time, string Function, uint Line, uint Inode, ulong Block, byte Code)
{
    /// <summary>EXT4_ERR_* name as dumpe2fs prints it (fs/ext4/ext4.h, e2fsprogs lib/e2p/ls.c), or the number.</summary>
    public string CodeName => Code switch
    {
        1 => "EUNKNOWN",
        2 => "EIO",
        3 => "ENOMEM",
        4 => "EFSBADCRC",
        5 => "EFSCORRUPTED",
        6 => "ENOSPC",
        7 => "ENOKEY",
        8 => "EROFS",
        9 => "EFBIG",
        10 => "EEXIST",
        11 => "ERANGE",
        12 => "EOVERFLOW",
        13 => "EBUSY",
        14 => "ENOTDIR",
        15 => "ENOTEMPTY",
        16 => "ESHUTDOWN",
        17 => "EFAULT",
        _ => Code.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// The error record an ext2/3/4 filesystem keeps about itself, from the live counters in /sys/fs/ext4/NAME/
/// (exported by "ext4: export information about first/last errors via /sys/fs/ext4/&lt;dev&gt;", 2019) or from the
/// on-disk superblock read like <c>dumpe2fs -h</c>. State and error behaviour come only from the superblock.
/// </summary>
public sealed record Ext4ErrorRecord(
    string Source,
    uint ErrorCount,
    Ext4ErrorPoint? FirstError,
    Ext4ErrorPoint? LastError,
    Ext4State? State = null,
    Ext4ErrorBehaviour? ErrorBehaviour = null)
{
    /// <summary>Reads /sys/fs/ext4/<paramref name="name"/>/; null when the directory or errors_count is absent.</summary>
    public static Ext4ErrorRecord? FromSysfs(string sysfsRoot, string name)
    {
        var dir = Path.Combine(sysfsRoot, "fs", "ext4", name);
        if (SysfsBlockDevices.ReadText(Path.Combine(dir, "errors_count")) is not { } countText
            || !uint.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            return null;
        }

        return new Ext4ErrorRecord("sysfs", count, ReadPoint(dir, "first"), ReadPoint(dir, "last"));
    }

    /// <summary>Builds the record from a decoded superblock (what <c>dumpe2fs -h</c> shows).</summary>
    public static Ext4ErrorRecord FromSuperblock(Ext4Superblock sb) => new(
        "superblock",
        sb.ErrorCount,
        sb.FirstErrorTime is { } ft ? new(ft, sb.FirstErrorFunction, sb.FirstErrorLine, sb.FirstErrorInode, sb.FirstErrorBlock, sb.FirstErrorCode) : null,
        sb.LastErrorTime is { } lt ? new(lt, sb.LastErrorFunction, sb.LastErrorLine, sb.LastErrorInode, sb.LastErrorBlock, sb.LastErrorCode) : null,
        sb.State,
        sb.Errors);

    /// <summary>
    /// Reads the superblock from <paramref name="devicePath"/> read-only (1024 bytes at 1024). Throws
    /// <see cref="SourceReadException"/> on EIO, which on a failing disk is itself evidence.
    /// </summary>
    public static Ext4ErrorRecord ReadSuperblock(string devicePath)
    {
        using var source = FileBlockSource.Open(devicePath);
        var bytes = source.ReadBytes(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes);
        return FromSuperblock(Ext4Superblock.Decode(bytes));
    }

    private static Ext4ErrorPoint? ReadPoint(string dir, string which)
    {
        // first_error_time is 0 until the first error (fs/ext4/sysfs.c print_tstamp).
        var time = ReadLong(Path.Combine(dir, which + "_error_time"));
        if (time is null or <= 0)
        {
            return null;
        }

        return new Ext4ErrorPoint(
            DateTimeOffset.FromUnixTimeSeconds(time.Value),
            SysfsBlockDevices.ReadText(Path.Combine(dir, which + "_error_func")) ?? "",
            (uint)(ReadLong(Path.Combine(dir, which + "_error_line")) ?? 0),
            (uint)(ReadLong(Path.Combine(dir, which + "_error_ino")) ?? 0),
            (ulong)(ReadLong(Path.Combine(dir, which + "_error_block")) ?? 0),
            (byte)(ReadLong(Path.Combine(dir, which + "_error_errcode")) ?? 0));
    }

    private static long? ReadLong(string path) =>
        long.TryParse(SysfsBlockDevices.ReadText(path), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;
}
