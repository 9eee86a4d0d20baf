// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;

namespace VRescue.Formats.Xen;

/// <summary>
/// Tolerant extractor for the flat <c>&lt;tag&gt;value&lt;/tag&gt;</c> fragments SM writes into the MGT volume
/// (xapi-project/sm libs/sm/srmetadata.py buildXMLElement/buildXMLSector). Not an XML parser: no DTDs, no external
/// entities, no nesting; only the five predefined entities and numeric references are decoded. Linear in input.
/// </summary>
internal static class XenMgtXml
{
    /// <summary>Elements in on-disk order; the first problem met (unterminated element, stray markup) if any.</summary>
    public static List<KeyValuePair<string, string>> Extract(string text, out string? problem, out int problemIndex)
    {
        var elements = new List<KeyValuePair<string, string>>();
        problem = null;
        problemIndex = -1;
        var pos = 0;
        while (pos < text.Length)
        {
            var lt = text.IndexOf('<', pos);
            if (lt < 0)
            {
                break;
            }

            var i = lt + 1;
            while (i < text.Length && IsNameChar(text[i]))
            {
                i++;
            }

            if (i == lt + 1 || i >= text.Length || text[i] != '>')
            {
                if (problem is null)
                {
                    problem = "unexpected markup";
                    problemIndex = lt;
                }

                pos = lt + 1;
                continue;
            }

            var name = text[(lt + 1)..i];
            var valueStart = i + 1;
            var close = text.IndexOf("</" + name + ">", valueStart, StringComparison.Ordinal);
            if (close < 0)
            {
                // A cut record still tells the engineer something: keep the partial value, then stop.
                elements.Add(new(name, Unescape(text[valueStart..]).Trim()));
                problem = $"element <{name}> not terminated";
                problemIndex = lt;
                break;
            }

            elements.Add(new(name, Unescape(text[valueStart..close]).Trim()));
            pos = close + name.Length + 3;
        }

        return elements;
    }

    /// <summary>Escapes like Python xml.sax.saxutils.escape: &amp;, &lt;, &gt; only.</summary>
    public static string Escape(string value) =>
        value.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal);

    /// <summary>Decodes predefined and numeric entities; anything else (including a cut "&amp;am") stays literal.</summary>
    public static string Unescape(string value)
    {
        if (!value.Contains('&'))
        {
            return value;
        }

        var sb = new StringBuilder(value.Length);
        var pos = 0;
        while (pos < value.Length)
        {
            var amp = value.IndexOf('&', pos);
            if (amp < 0)
            {
                sb.Append(value, pos, value.Length - pos);
                break;
            }

            sb.Append(value, pos, amp - pos);
            var semi = value.IndexOf(';', amp + 1, Math.Min(12, value.Length - amp - 1));
            string? decoded = semi < 0 ? null : DecodeEntity(value[(amp + 1)..semi]);
            if (decoded is null)
            {
                sb.Append('&');
                pos = amp + 1;
            }
            else
            {
                sb.Append(decoded);
                pos = semi + 1;
            }
        }

        return sb.ToString();
    }

    private static string? DecodeEntity(string name)
    {
        switch (name)
        {
            case "amp": return "&";
            case "lt": return "<";
            case "gt": return ">";
            case "quot": return "\"";
            case "apos": return "'";
        }

        var code = 0;
        var ok = name.StartsWith("#x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(name.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code)
            : name.StartsWith('#') && int.TryParse(name.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out code);
        if (!ok || code is < 1 or > 0x10FFFF || code is >= 0xD800 and <= 0xDFFF)
        {
            return null;
        }

        return char.ConvertFromUtf32(code);
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':';

    /// <summary>Length in chars of the longest prefix whose UTF-8 form fits <paramref name="maxBytes"/> (sm util.unictrunc).</summary>
    public static int Utf8PrefixChars(string value, int maxBytes)
    {
        var bytes = 0;
        var i = 0;
        while (i < value.Length)
        {
            var step = char.IsSurrogatePair(value, i) ? 2 : 1;
            var n = Encoding.UTF8.GetByteCount(value.AsSpan(i, step));
            if (bytes + n > maxBytes)
            {
                break;
            }

            bytes += n;
            i += step;
        }

        return i;
    }
}
