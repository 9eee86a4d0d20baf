// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace VRescue.Storage;

/// <summary>A write target that is, or may be, one of the evidence sources.</summary>
public sealed class TargetIsSourceException(string message) : IOException(message);

/// <summary>
/// Refuses a write target that is a source: same path, a symlink or hard link to it (same device and inode), the
/// same block device (same rdev), a partition of a source device or the disk holding a source partition, or a loop
/// device backed by a source file (and the reverse).
/// </summary>
public static class TargetGuard
{
    private readonly record struct Identity(ulong Dev, ulong Ino, ulong Rdev, uint Mode)
    {
        public bool IsBlock => (Mode & 0xF000) == 0x6000;
    }

    public static void EnsureNotSource(string target, IEnumerable<string> sources)
    {
        var targetFull = Path.GetFullPath(target);
        var targetId = Stat(target);
        foreach (var source in sources)
        {
            var sourceFull = Path.GetFullPath(source);
            if (string.Equals(Resolve(targetFull), Resolve(sourceFull), StringComparison.Ordinal))
            {
                throw Refuse(target, source, "it is the same file");
            }

            if (targetId is not { } t || Stat(source) is not { } s)
            {
                continue;
            }

            if (t.Dev == s.Dev && t.Ino == s.Ino)
            {
                throw Refuse(target, source, "it is the same file (link)");
            }

            if (t.IsBlock && s.IsBlock && (t.Rdev == s.Rdev || Parent(t.Rdev) == s.Rdev || Parent(s.Rdev) == t.Rdev))
            {
                throw Refuse(target, source, "they are the same block device, or one is a partition of the other");
            }

            if (t.IsBlock && LoopBacking(t.Rdev) is { } tb && Stat(tb) is { } tbId && tbId.Dev == s.Dev && tbId.Ino == s.Ino)
            {
                throw Refuse(target, source, $"the target is a loop device backed by the source ({tb})");
            }

            if (s.IsBlock && LoopBacking(s.Rdev) is { } sb && Stat(sb) is { } sbId && sbId.Dev == t.Dev && sbId.Ino == t.Ino)
            {
                throw Refuse(target, source, $"the source is a loop device backed by the target ({sb})");
            }
        }
    }

    /// <summary>
    /// False when <paramref name="path"/> exists and is not a regular file (a directory, device, FIFO): outputs that
    /// are written by temporary file + rename must not replace one. True when it is a regular file or does not exist.
    /// </summary>
    public static bool IsRegularFileOrMissing(string path) =>
        !Path.Exists(path) || (!Directory.Exists(path) && (Stat(path) is not { } id || (id.Mode & 0xF000) == 0x8000));

    private static TargetIsSourceException Refuse(string target, string source, string why) =>
        new($"refusing to write to {target}: {why} as source {source}; evidence is never written — give a copy or a new file as the target");

    private static string Resolve(string path)
    {
        try
        {
            return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path;
        }
        catch (IOException)
        {
            return path;
        }
    }

    private static ulong? Parent(ulong rdev)
    {
        var (major, minor) = Split(rdev);
        var link = $"/sys/dev/block/{major}:{minor}";
        if (!File.Exists(Path.Combine(link, "partition")))
        {
            return null;
        }

        var dev = Path.Combine(link, "..", "dev");
        if (!File.Exists(dev))
        {
            return null;
        }

        var parts = File.ReadAllText(dev).Trim().Split(':');
        return parts.Length == 2 && uint.TryParse(parts[0], out var pm) && uint.TryParse(parts[1], out var pn) ? Make(pm, pn) : null;
    }

    private static string? LoopBacking(ulong rdev)
    {
        var (major, minor) = Split(rdev);
        var file = $"/sys/dev/block/{major}:{minor}/loop/backing_file";
        return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
    }

    // glibc gnu_dev_major/minor.
    private static (uint Major, uint Minor) Split(ulong dev) =>
        ((uint)(((dev >> 32) & 0xFFFFF000) | ((dev >> 8) & 0xFFF)), (uint)(((dev >> 12) & 0xFFFFFF00) | (dev & 0xFF)));

    private static ulong Make(uint major, uint minor) =>
        ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);

    /// <summary>stat(2) following links; null when the path does not exist or the platform layout is unknown.</summary>
    private static Identity? Stat(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return null;
        }

        var buf = new byte[256];
        if (NativeStat(path, buf) != 0)
        {
            return null;
        }

        // struct stat: x86_64 st_dev@0 st_ino@8 st_mode@24 st_rdev@40; generic (arm64) st_mode@16 st_rdev@32.
        var x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        var mode = BitConverter.ToUInt32(buf, x64 ? 24 : 16);
        return new Identity(BitConverter.ToUInt64(buf, 0), BitConverter.ToUInt64(buf, 8), BitConverter.ToUInt64(buf, x64 ? 40 : 32), mode);
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int NativeStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buf);
}
