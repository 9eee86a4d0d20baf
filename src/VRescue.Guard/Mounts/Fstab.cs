// SPDX-License-Identifier: MIT
namespace VRescue.Guard.Mounts;

/// <summary>One /etc/fstab entry (fstab(5): spec, file, vfstype, mntops, freq, passno; \040-style escapes).</summary>
public sealed record FstabEntry(string Spec, string MountPoint, string FsType, IReadOnlyList<string> Options)
{
    /// <summary>The administrator asked for a read-only mount.</summary>
    public bool IsReadOnly => Options.Contains("ro");
}

/// <summary>Pure, tolerant fstab parser: comments, blank and short lines are skipped, never fatal.</summary>
public static class FstabParser
{
    public static IReadOnlyList<FstabEntry> Parse(string text)
    {
        var entries = new List<FstabEntry>();
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var f = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 3)
            {
                continue;
            }

            var options = f.Length > 3 ? f[3].Split(',', StringSplitOptions.RemoveEmptyEntries) : ["defaults"];
            entries.Add(new FstabEntry(MountInfoParser.Unescape(f[0]), NormaliseMountPoint(MountInfoParser.Unescape(f[1])), f[2], options));
        }

        return entries;
    }

    /// <summary>fstab may carry a trailing slash the kernel never shows.</summary>
    internal static string NormaliseMountPoint(string path) => path.Length > 1 ? path.TrimEnd('/') : path;
}
