// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace VRescue.Guard.Mounts;

/// <summary>
/// One line of /proc/PID/mountinfo (proc_pid_mountinfo(5); fs/proc_namespace.c show_mountinfo):
/// <c>ID PARENT MAJ:MIN ROOT MOUNTPOINT PER-MOUNT-OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTS</c>.
/// Per-mount (VFS) and superblock options are kept apart: an intended ro bind is per-mount <c>ro</c> over a
/// <c>rw</c> superblock, an error remount is the reverse. Paths are already unescaped.
/// </summary>
public sealed record MountInfoEntry(
    int MountId,
    int ParentId,
    int Major,
    int Minor,
    string Root,
    string MountPoint,
    IReadOnlyList<string> MountOptions,
    IReadOnlyList<string> OptionalFields,
    string FsType,
    string Source,
    IReadOnlyList<string> SuperOptions)
{
    /// <summary>"MAJ:MIN" as in the file and in /sys/dev/block.</summary>
    public string DeviceNumber => $"{Major}:{Minor}";

    /// <summary>The per-mount (VFS) flag is <c>ro</c>: somebody asked for a read-only mount or bind.</summary>
    public bool IsMountReadOnly => MountOptions.Contains("ro");

    /// <summary>The superblock flag is <c>ro</c> (SB_RDONLY): every mount of this filesystem is read-only.</summary>
    public bool IsSuperReadOnly => SuperOptions.Contains("ro");

    /// <summary>Exact token match in the superblock options (never a substring: <c>errors=remount-ro</c> is not <c>ro</c>).</summary>
    public bool HasSuperOption(string token) => SuperOptions.Contains(token);

    /// <summary>The value of a <c>key=value</c> superblock option, e.g. <c>errors</c>.</summary>
    public string? SuperOptionValue(string key)
    {
        foreach (var o in SuperOptions)
        {
            if (o.Length > key.Length && o.StartsWith(key, StringComparison.Ordinal) && o[key.Length] == '=')
            {
                return o[(key.Length + 1)..];
            }
        }

        return null;
    }
}

/// <summary>A line the parser could not use, kept so nothing is dropped silently.</summary>
public sealed record MountInfoProblem(int LineNumber, string Line, string Reason);

/// <summary>Parsed mount table: entries in file order and the lines that did not parse.</summary>
public sealed record MountTable(IReadOnlyList<MountInfoEntry> Entries, IReadOnlyList<MountInfoProblem> Problems);

/// <summary>Pure parser for mountinfo text.</summary>
public static class MountInfoParser
{
    /// <summary>Parses the whole file; malformed lines become <see cref="MountTable.Problems"/>.</summary>
    public static MountTable Parse(string text)
    {
        var entries = new List<MountInfoEntry>();
        var problems = new List<MountInfoProblem>();
        var lineNumber = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            if (TryParseLine(line, out var entry, out var reason))
            {
                entries.Add(entry);
            }
            else
            {
                problems.Add(new MountInfoProblem(lineNumber, line, reason));
            }
        }

        return new MountTable(entries, problems);
    }

    /// <summary>Parses one line (no trailing newline).</summary>
    public static bool TryParseLine(string line, out MountInfoEntry entry, out string reason)
    {
        entry = null!;
        // Fields are separated by single spaces; spaces inside paths are escaped as \040, so Split is exact.
        var f = line.Split(' ');
        var separator = f.Length < 10 ? -1 : Array.IndexOf(f, "-", 6);
        if (separator < 0)
        {
            reason = "fewer fields than ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS - FSTYPE SOURCE SUPER-OPTS";
            return false;
        }

        if (separator + 4 != f.Length)
        {
            reason = $"expected 3 fields after the '-' separator, found {f.Length - separator - 1}";
            return false;
        }

        var colon = f[2].IndexOf(':');
        if (!int.TryParse(f[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || !int.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            || colon <= 0
            || !int.TryParse(f[2].AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(f[2].AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            reason = "mount id, parent id or MAJ:MIN is not numeric";
            return false;
        }

        entry = new MountInfoEntry(
            id, parent, major, minor,
            Root: Unescape(f[3]),
            MountPoint: Unescape(f[4]),
            MountOptions: SplitOptions(f[5]),
            OptionalFields: f[6..separator],
            FsType: Unescape(f[separator + 1]),
            Source: Unescape(f[separator + 2]),
            SuperOptions: SplitOptions(f[separator + 3]));
        reason = "";
        return true;
    }

    /// <summary>
    /// Decodes the octal escapes the kernel writes for space, tab, newline and backslash (fs/proc_namespace.c
    /// mangle(): seq_escape with " \t\n\\"); any other <c>\NNN</c> is decoded too, bytes taken as UTF-8.
    /// </summary>
    public static string Unescape(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        var raw = Encoding.UTF8.GetBytes(field);
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && IsOctal(raw, i + 1))
            {
                bytes.Add((byte)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(byte[] raw, int at) =>
        at + 2 < raw.Length && raw[at] is >= (byte)'0' and <= (byte)'3'
        && raw[at + 1] is >= (byte)'0' and <= (byte)'7' && raw[at + 2] is >= (byte)'0' and <= (byte)'7';

    private static string[] SplitOptions(string field) =>
        field.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Unescape).ToArray();
}
