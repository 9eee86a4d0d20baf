// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Lvm;

/// <summary>Result of <see cref="LvmConfigParser.Parse"/>: the tree built so far and what went wrong.</summary>
/// <param name="Root">Top-level statements (kept up to the first syntax error).</param>
/// <param name="Findings">Syntax errors (at most one, parsing stops there) and warnings.</param>
/// <param name="LengthBytes">Bytes parsed: up to the first NUL or the end of the input.</param>
public sealed record LvmConfigParseResult(LvmConfigSection Root, IReadOnlyList<Finding> Findings, int LengthBytes)
{
    /// <summary>True when the whole text parsed without an error.</summary>
    public bool Complete => Findings.All(f => f.Severity != Severity.Error);
}

/// <summary>
/// Tolerant parser for the libdm config grammar used by LVM metadata text (libdm/libdm-config.c): sections
/// <c>name { … }</c>, <c>key = value</c>, 64-bit integers, floats, strings ("…" with \" and \\ escapes, '…'
/// literal), flat arrays with optional commas, <c>#</c> comments. Stops at the first NUL. Unknown keys are
/// kept. Bounded: nesting depth, token length, node count and text size; no recursion beyond
/// <see cref="MaxDepth"/>; never throws on bad text (errors are findings with line, column and offset).
/// </summary>
public static class LvmConfigParser
{
    /// <summary>Deepest section nesting accepted (VG metadata uses 4).</summary>
    public const int MaxDepth = 64;

    /// <summary>Longest key or string accepted.</summary>
    public const int MaxTokenBytes = 1024 * 1024;

    /// <summary>Most statements and array elements in one text.</summary>
    public const int MaxNodes = 4 * 1024 * 1024;

    /// <summary>Largest text parsed (up to the first NUL).</summary>
    public const int MaxTextBytes = LvmMdaHeader.MaxTextBytes;

    /// <summary>
    /// Parses <paramref name="text"/> up to the first NUL. Finding and node offsets are
    /// <paramref name="baseOffsetBytes"/> + the offset in the text.
    /// </summary>
    public static LvmConfigParseResult Parse(ReadOnlySpan<byte> text, long baseOffsetBytes = 0)
    {
        var nul = text.IndexOf((byte)0);
        if (nul >= 0)
        {
            text = text[..nul];
        }

        var root = new LvmConfigSection("");
        var findings = new List<Finding>();
        if (text.Length > MaxTextBytes)
        {
            findings.Add(new Finding("LVM_TEXT_TOO_LARGE", Severity.Error,
                $"metadata text is {text.Length} bytes before its NUL, more than the {MaxTextBytes} bytes VRescue parses",
                baseOffsetBytes, null, text.Length.ToString(), $"<= {MaxTextBytes}"));
            return new LvmConfigParseResult(root, findings, text.Length);
        }

        var parser = new Parser(text, baseOffsetBytes, findings);
        try
        {
            parser.ParseStatements(root, 0);
        }
        catch (StopParsing)
        {
            // The finding is already recorded; the partial tree stays usable.
        }

        return new LvmConfigParseResult(root, findings, text.Length);
    }

    /// <summary>Parses and throws <see cref="CorruptDataException"/> on the first syntax error.</summary>
    public static LvmConfigSection ParseStrict(ReadOnlySpan<byte> text, long baseOffsetBytes = 0)
    {
        var result = Parse(text, baseOffsetBytes);
        CorruptDataException.ThrowIfErrors("LVM2", "metadata text", result.Findings);
        return result.Root;
    }

    private sealed class StopParsing : Exception;

    private ref struct Parser(ReadOnlySpan<byte> s, long baseOffset, List<Finding> findings)
    {
        private readonly ReadOnlySpan<byte> _s = s;
        private int _pos;
        private int _line = 1;
        private int _lineStart;
        private int _nodes;

        public void ParseStatements(LvmConfigSection section, int depth)
        {
            var keys = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                SkipBlank();
                if (_pos >= _s.Length)
                {
                    if (depth > 0)
                    {
                        Fail("LVM_TEXT_UNCLOSED_SECTION", $"text ends inside section '{section.Name}' (truncated?)");
                    }

                    return;
                }

                if (_s[_pos] == '}')
                {
                    if (depth == 0)
                    {
                        Fail("LVM_TEXT_SYNTAX", "'}' without a matching '{'");
                    }

                    _pos++;
                    return;
                }

                var (line, column, offset) = (_line, _pos - _lineStart + 1, baseOffset + _pos);
                var key = ReadKey();
                SkipBlank();
                if (_pos < _s.Length && _s[_pos] == '{')
                {
                    if (depth + 1 > MaxDepth)
                    {
                        Fail("LVM_TEXT_DEPTH", $"sections nested deeper than {MaxDepth}");
                    }

                    _pos++;
                    CountNode();
                    var child = new LvmConfigSection(key);
                    section.Add(new LvmConfigNode(child, line, column, offset));
                    ParseStatements(child, depth + 1);
                    continue;
                }

                if (_pos >= _s.Length || _s[_pos] != '=')
                {
                    Fail("LVM_TEXT_SYNTAX", $"expected '=' or '{{' after '{Trim(key)}'");
                }

                _pos++;
                CountNode();
                var value = ReadValue();
                if (!keys.Add(key))
                {
                    findings.Add(new Finding("LVM_TEXT_DUPLICATE_KEY", Severity.Warning,
                        $"'{Trim(key)}' appears twice in section '{section.Name}' at line {line}; the last one is used", offset, key));
                }

                section.Add(new LvmConfigNode(key, value, line, column, offset));
            }
        }

        private LvmConfigValue ReadValue()
        {
            SkipBlank();
            if (_pos < _s.Length && _s[_pos] == '[')
            {
                _pos++;
                var items = new List<LvmConfigValue>();
                while (true)
                {
                    SkipBlank();
                    if (_pos >= _s.Length)
                    {
                        Fail("LVM_TEXT_SYNTAX", "text ends inside an array");
                    }

                    if (_s[_pos] == ']')
                    {
                        _pos++;
                        return LvmConfigValue.FromArray(items);
                    }

                    if (_s[_pos] == ',')
                    {
                        _pos++;
                        continue;
                    }

                    if (_s[_pos] == '[')
                    {
                        Fail("LVM_TEXT_SYNTAX", "arrays cannot be nested");
                    }

                    CountNode();
                    items.Add(ReadScalar());
                }
            }

            return ReadScalar();
        }

        private LvmConfigValue ReadScalar()
        {
            if (_pos >= _s.Length)
            {
                Fail("LVM_TEXT_SYNTAX", "expected a value");
            }

            var c = _s[_pos];
            if (c is (byte)'"' or (byte)'\'')
            {
                return LvmConfigValue.FromString(ReadQuoted());
            }

            var start = _pos;
            var word = ReadWord();
            if (word.Length == 0)
            {
                Fail("LVM_TEXT_SYNTAX", $"unexpected '{(char)c}' where a value was expected");
            }

            var token = Encoding.UTF8.GetString(word);
            if (!(char.IsAsciiDigit(token[0]) || (token.Length > 1 && token[0] is '-' or '+')))
            {
                return LvmConfigValue.FromString(token); // a bare word is a string value
            }

            if (token.Contains('.'))
            {
                if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                {
                    FailAt(start, "LVM_TEXT_SYNTAX", $"'{Trim(token)}' is not a number");
                }

                return LvmConfigValue.FromFloatText(token);
            }

            var value = ParseInteger(token);
            if (value is null)
            {
                if (!token.AsSpan(token[0] is '-' or '+' ? 1 : 0).ContainsAnyExceptInRange('0', '9'))
                {
                    findings.Add(new Finding("LVM_TEXT_INTEGER_RANGE", Severity.Warning,
                        $"integer {Trim(token)} at line {_line} does not fit 64 bits; kept as text", baseOffset + start, null, token));
                    return LvmConfigValue.FromIntegerText(token, null);
                }

                FailAt(start, "LVM_TEXT_SYNTAX", $"'{Trim(token)}' is not a number");
            }

            return LvmConfigValue.FromIntegerText(token, value);
        }

        /// <summary>strtoll base 0 as libdm uses it: a leading 0 means octal.</summary>
        private static long? ParseInteger(string token)
        {
            var negative = token[0] == '-';
            var digits = token[0] is '-' or '+' ? token[1..] : token;
            var radix = digits.Length > 1 && digits[0] == '0' ? 8 : 10;
            long v = 0;
            foreach (var ch in digits)
            {
                var d = ch - '0';
                if (d < 0 || d >= radix)
                {
                    return null;
                }

                try
                {
                    v = checked((v * radix) + (negative ? -d : d));
                }
                catch (OverflowException)
                {
                    return null;
                }
            }

            return v;
        }

        private string ReadKey()
        {
            if (_s[_pos] is (byte)'"' or (byte)'\'')
            {
                return ReadQuoted();
            }

            var word = ReadWord();
            if (word.Length == 0)
            {
                Fail("LVM_TEXT_SYNTAX", $"unexpected '{Printable(_s[_pos])}' where a key was expected");
            }

            return Encoding.UTF8.GetString(word);
        }

        private ReadOnlySpan<byte> ReadWord()
        {
            var start = _pos;
            while (_pos < _s.Length && !IsDelimiter(_s[_pos]))
            {
                _pos++;
                if (_pos - start > MaxTokenBytes)
                {
                    FailAt(start, "LVM_TEXT_TOKEN_LENGTH", $"token longer than {MaxTokenBytes} bytes");
                }
            }

            return _s[start.._pos];
        }

        private string ReadQuoted()
        {
            var start = _pos;
            var (startLine, startColumn) = (_line, _pos - _lineStart + 1);
            var quote = _s[_pos++];

            // Fast path: nearly every LVM string has no escape and no newline before its closing quote.
            var rest = _s[_pos..];
            var stop = quote == '"' ? rest.IndexOfAny((byte)'"', (byte)'\\', (byte)'\n') : rest.IndexOfAny(quote, (byte)'\n');
            if (stop >= 0 && stop <= MaxTokenBytes && rest[stop] == quote)
            {
                _pos += stop + 1;
                return Encoding.UTF8.GetString(rest[..stop]);
            }

            var sb = new List<byte>();
            while (true)
            {
                if (_pos >= _s.Length)
                {
                    FailAt(start, "LVM_TEXT_UNTERMINATED_STRING",
                        $"string opened at line {startLine} column {startColumn} is never closed", startLine, startColumn);
                }

                if (sb.Count > MaxTokenBytes)
                {
                    FailAt(start, "LVM_TEXT_TOKEN_LENGTH", $"string longer than {MaxTokenBytes} bytes", startLine, startColumn);
                }

                var c = _s[_pos++];
                if (c == quote)
                {
                    return Encoding.UTF8.GetString(sb.ToArray());
                }

                if (c == '\n')
                {
                    _line++;
                    _lineStart = _pos;
                }

                // libdm-config.c _tok_string/dm_unescape_double_quotes: only \" and \\ are escapes.
                if (quote == '"' && c == '\\' && _pos < _s.Length && _s[_pos] is (byte)'"' or (byte)'\\')
                {
                    c = _s[_pos++];
                }

                sb.Add(c);
            }
        }

        private void SkipBlank()
        {
            while (_pos < _s.Length)
            {
                var c = _s[_pos];
                if (c == '\n')
                {
                    _pos++;
                    _line++;
                    _lineStart = _pos;
                }
                else if (c is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\v' or (byte)'\f')
                {
                    _pos++;
                }
                else if (c == '#')
                {
                    var eol = _s[_pos..].IndexOf((byte)'\n');
                    _pos = eol < 0 ? _s.Length : _pos + eol;
                }
                else
                {
                    return;
                }
            }
        }

        private static bool IsDelimiter(byte c) =>
            c is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'#' or (byte)'='
                or (byte)'{' or (byte)'}' or (byte)'[' or (byte)']' or (byte)',' or (byte)'"' or (byte)'\'';

        private void CountNode()
        {
            if (++_nodes > MaxNodes)
            {
                Fail("LVM_TEXT_TOO_MANY_NODES", $"more than {MaxNodes} statements and array elements");
            }
        }

        private void Fail(string code, string message) => FailAt(_pos, code, message);

        private void FailAt(int pos, string code, string message, int? line = null, int? column = null)
        {
            var l = line ?? _line;
            var col = column ?? pos - _lineStart + 1;
            findings.Add(new Finding(code, Severity.Error,
                $"metadata text line {l} column {col} (byte {pos} of the text): {message}", baseOffset + pos));
            throw new StopParsing();
        }

        private static string Printable(byte c) => c is >= 0x20 and < 0x7F ? ((char)c).ToString() : $"\\x{c:X2}";

        private static string Trim(string s) => s.Length <= 64 ? s : s[..64] + "…";
    }
}
