// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Xen;

/// <summary>
/// Sector 0 of the MGT volume: ASCII <c>XSSM:&lt;length, left-aligned, space-padded to 10&gt;:1:2</c>, rest spaces
/// (xapi-project/sm libs/sm/srmetadata.py buildHeader/unpackHeader; metadata.py HDR_STRING, MD_MAJOR, MD_MINOR).
/// <see cref="LengthBytes"/> counts the bytes in use: SR info plus every record slot up to the last live one.
/// </summary>
public sealed record XenMgtHeader(bool HasMagic, int FieldCount, string LengthField, long? LengthBytes, int? Major, int? Minor, string Text)
{
    public const int SizeBytes = 512;
    public const int LengthFieldOffset = 5;
    public const int LengthFieldChars = 10;
    public const int CurrentMajor = 1;
    public const int CurrentMinor = 2;

    /// <summary>"XSSM:" (metadata.py HDR_STRING + srmetadata.py HEADER_SEP).</summary>
    public static ReadOnlySpan<byte> Magic => "XSSM:"u8;

    /// <summary>Decodes the header from the first (up to) 512 bytes; never throws.</summary>
    public static XenMgtHeader Decode(ReadOnlySpan<byte> sector)
    {
        sector = sector[..Math.Min(sector.Length, SizeBytes)];
        var text = Encoding.Latin1.GetString(sector).Trim(' ', '\0', '\n', '\r', '\t');
        var parts = text.Split(':');
        var lengthField = parts.Length > 1 ? parts[1] : "";
        long? length = null;
        var trimmed = lengthField.Trim();
        if (trimmed.Length is > 0 and <= 18
            && long.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var l))
        {
            length = l;
        }

        return new XenMgtHeader(sector.StartsWith(Magic), parts.Length, lengthField, length,
            parts.Length > 2 ? ParseSmall(parts[2]) : null, parts.Length > 3 ? ParseSmall(parts[3]) : null, text);
    }

    /// <summary>Checks magic, field count, length range and alignment, version. Offsets are volume-relative.</summary>
    public IReadOnlyList<Finding> Validate()
    {
        var findings = new List<Finding>();
        if (!HasMagic)
        {
            findings.Add(new("XEN_MGT_NO_MAGIC", Severity.Error, "MGT sector 0 does not start with \"XSSM:\"; not an SR metadata volume or header overwritten",
                0, "magic", Shorten(Text), "XSSM:"));
            return findings;
        }

        if (FieldCount != 4)
        {
            findings.Add(new("XEN_MGT_BAD_HEADER", Severity.Error, $"MGT header has {FieldCount} ':'-separated fields; SM requires 4",
                0, "header", Shorten(Text), "XSSM:<length>:1:2"));
        }

        if (LengthBytes is not { } len || len < XenMgtVolume.FirstRecordOffsetBytes || len > XenMgtVolume.MaxVolumeBytes)
        {
            findings.Add(new("XEN_MGT_BAD_LENGTH", Severity.Error,
                $"MGT header length '{Shorten(LengthField.Trim())}' is not a byte count between {XenMgtVolume.FirstRecordOffsetBytes} and {XenMgtVolume.MaxVolumeBytes}",
                LengthFieldOffset, "length", Shorten(LengthField.Trim()), $"{XenMgtVolume.FirstRecordOffsetBytes} + {XenMgtVolume.RecordSizeBytes} x records"));
        }
        else if ((len - XenMgtVolume.FirstRecordOffsetBytes) % XenMgtVolume.RecordSizeBytes != 0)
        {
            findings.Add(new("XEN_MGT_LENGTH_MISALIGNED", Severity.Warning,
                $"MGT header length {len} is not 2048 + a multiple of 1024; the last slot is partial",
                LengthFieldOffset, "length", len.ToString(CultureInfo.InvariantCulture)));
        }

        if (FieldCount == 4 && (Major != CurrentMajor || Minor != CurrentMinor))
        {
            findings.Add(new("XEN_MGT_VERSION", Severity.Warning, $"MGT version {Major}.{Minor} is not the known 1.2; decoding as 1.2",
                0, "version", $"{Major}.{Minor}", "1.2"));
        }

        return findings;
    }

    /// <summary>Writes sector 0 exactly as srmetadata.py buildHeader + getSector: space padded to 512 bytes.</summary>
    public static void Encode(long lengthBytes, Span<byte> destination, int major = CurrentMajor, int minor = CurrentMinor)
    {
        var text = string.Create(CultureInfo.InvariantCulture, $"XSSM:{lengthBytes,-LengthFieldChars}:{major}:{minor}");
        XenMgtVolume.WritePadded(Encoding.ASCII.GetBytes(text), destination[..SizeBytes]);
    }

    private static int? ParseSmall(string s) =>
        int.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    internal static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
