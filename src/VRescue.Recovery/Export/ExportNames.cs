// SPDX-License-Identifier: MIT
using System.Text;

namespace VRescue.Recovery.Export;

/// <summary>Output file names: `&lt;vdi uuid&gt;[-&lt;name label&gt;].&lt;ext&gt;`, sanitised so nothing can leave the output directory.</summary>
public static class ExportNames
{
    /// <summary>Longest label part in UTF-8 bytes (uuid 36 + label + extension stays far below NAME_MAX 255).</summary>
    public const int MaxLabelBytes = 96;

    /// <summary>
    /// Letters and digits of any script are kept; every other character (separators, dots, spaces, controls, shell and
    /// XML specials) becomes '_', runs of '_' collapse, and the label is trimmed, so the result is a single plain path
    /// component that starts with the uuid.
    /// </summary>
    public static string FileName(Guid vdiUuid, string? nameLabel, string extension)
    {
        var label = SanitiseLabel(nameLabel);
        return label.Length == 0 ? $"{vdiUuid}.{extension}" : $"{vdiUuid}-{label}.{extension}";
    }

    public static string SanitiseLabel(string? nameLabel)
    {
        if (string.IsNullOrWhiteSpace(nameLabel))
        {
            return "";
        }

        var sb = new StringBuilder();
        foreach (var rune in nameLabel.EnumerateRunes())
        {
            var keep = Rune.IsLetterOrDigit(rune) || rune.Value is '-';
            if (keep)
            {
                sb.Append(rune.ToString());
            }
            else if (sb.Length > 0 && sb[^1] != '_')
            {
                sb.Append('_');
            }
        }

        var text = sb.ToString().Trim('_', '-');
        while (Encoding.UTF8.GetByteCount(text) > MaxLabelBytes)
        {
            var cut = text.Length - 1;
            if (char.IsLowSurrogate(text[cut]) && cut > 0)
            {
                cut--;
            }

            text = text[..cut].TrimEnd('_', '-');
        }

        return text;
    }

    /// <summary>Joins <paramref name="fileName"/> to <paramref name="directory"/> and proves the result stays inside it.</summary>
    public static string PathInside(string directory, string fileName)
    {
        var dir = Path.GetFullPath(directory);
        var full = Path.GetFullPath(Path.Combine(dir, fileName));
        if (!string.Equals(Path.GetDirectoryName(full), dir.TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            throw new ArgumentException($"output name {fileName} would leave {dir}", nameof(fileName));
        }

        return full;
    }
}
