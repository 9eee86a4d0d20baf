// SPDX-License-Identifier: MIT
using System.Globalization;

namespace VRescue.Cli.Rendering;

/// <summary>Human sizes and offsets for terminal output.</summary>
public static class Units
{
    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        var i = 0;
        while (Math.Abs(v) >= 1024 && i < units.Length - 1)
        {
            v /= 1024;
            i++;
        }

        return i == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{v:0.0} {units[i]}");
    }

    public static string Size(long? bytes) => bytes is { } b ? Size(b) : "?";

    public static string Offset(long offsetBytes) => $"0x{offsetBytes:X}";
}
