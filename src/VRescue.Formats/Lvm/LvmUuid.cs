// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Lvm;

/// <summary>LVM UUIDs (lvm2 lib/id/id.c): 32 characters stored without dashes, shown as 6-4-4-4-4-4-6.</summary>
public static class LvmUuid
{
    /// <summary>Characters of an unformatted UUID.</summary>
    public const int Length = 32;

    private static readonly int[] s_groupLengths = [6, 4, 4, 4, 4, 4, 6];

    /// <summary>Inserts the dashes (id_write_format); returns the input unchanged when it is not 32 characters.</summary>
    public static string Format(string uuid)
    {
        if (uuid.Length != Length)
        {
            return uuid;
        }

        var parts = new string[s_groupLengths.Length];
        var at = 0;
        for (var i = 0; i < parts.Length; i++)
        {
            parts[i] = uuid.Substring(at, s_groupLengths[i]);
            at += s_groupLengths[i];
        }

        return string.Join('-', parts);
    }

    /// <summary>Removes the dashes (id_read_format).</summary>
    public static string Strip(string formatted) => formatted.Replace("-", "", StringComparison.Ordinal);

    /// <summary>True when <paramref name="uuid"/> (dashes allowed) has 32 characters of LVM's alphabet <c>0-9a-zA-Z!#</c>.</summary>
    public static bool IsValid(string uuid)
    {
        var s = Strip(uuid);
        return s.Length == Length && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '!' or '#');
    }
}

/// <summary>A disk_locn (lvm2 lib/format_text/layout.h): a byte offset and size, both u64 little-endian.</summary>
/// <param name="OffsetBytes">Offset from the start of the PV.</param>
/// <param name="SizeBytes">Size; 0 for a data area means "to the end of the device".</param>
public readonly record struct LvmDiskLocation(ulong OffsetBytes, ulong SizeBytes)
{
    /// <summary>Encoded size of one disk_locn.</summary>
    public const int EncodedLength = 16;
}
