// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Lvm;

/// <summary>Kinds of values in the libdm config grammar (libdm/libdm-config.c DM_CFG_*).</summary>
public enum LvmConfigValueKind
{
    Integer,
    Float,
    String,
    Array,
}

/// <summary>A value: integer (64-bit), float (kept as text), string, or a flat array of those.</summary>
public sealed class LvmConfigValue
{
    private LvmConfigValue(LvmConfigValueKind kind, string text, long? integer, IReadOnlyList<LvmConfigValue> items)
    {
        Kind = kind;
        Text = text;
        Integer = integer;
        Items = items;
    }

    public LvmConfigValueKind Kind { get; }

    /// <summary>The decoded string, or the number as written (kept for floats and out-of-range integers).</summary>
    public string Text { get; }

    /// <summary>The integer, or null when not an integer or out of 64-bit range.</summary>
    public long? Integer { get; }

    /// <summary>Array elements (empty for scalars).</summary>
    public IReadOnlyList<LvmConfigValue> Items { get; }

    /// <summary>An integer value.</summary>
    public static LvmConfigValue FromInteger(long value) =>
        new(LvmConfigValueKind.Integer, value.ToString(System.Globalization.CultureInfo.InvariantCulture), value, []);

    /// <summary>An integer token as written; <paramref name="value"/> null when it does not fit 64 bits.</summary>
    public static LvmConfigValue FromIntegerText(string text, long? value) => new(LvmConfigValueKind.Integer, text, value, []);

    /// <summary>A float token, kept as written.</summary>
    public static LvmConfigValue FromFloatText(string text) => new(LvmConfigValueKind.Float, text, null, []);

    /// <summary>A string value.</summary>
    public static LvmConfigValue FromString(string value) => new(LvmConfigValueKind.String, value, null, []);

    /// <summary>An array value.</summary>
    public static LvmConfigValue FromArray(IReadOnlyList<LvmConfigValue> items) => new(LvmConfigValueKind.Array, "", null, items);

    /// <summary>An array of strings (status flags, tags).</summary>
    public static LvmConfigValue FromStrings(IEnumerable<string> items) => FromArray(items.Select(FromString).ToList());

    public override string ToString() => Kind switch
    {
        LvmConfigValueKind.String => $"\"{Text}\"",
        LvmConfigValueKind.Array => "[" + string.Join(", ", Items) + "]",
        _ => Text,
    };
}

/// <summary>
/// One statement of a section: <c>key = value</c> (<see cref="Value"/> set) or <c>key { … }</c>
/// (<see cref="Section"/> set), with where it was found.
/// </summary>
public sealed class LvmConfigNode
{
    public LvmConfigNode(string key, LvmConfigValue value, int line = 0, int column = 0, long offsetBytes = -1)
    {
        Key = key;
        Value = value;
        Line = line;
        Column = column;
        OffsetBytes = offsetBytes;
    }

    public LvmConfigNode(LvmConfigSection section, int line = 0, int column = 0, long offsetBytes = -1)
    {
        Key = section.Name;
        Section = section;
        Line = line;
        Column = column;
        OffsetBytes = offsetBytes;
    }

    public string Key { get; }

    public LvmConfigValue? Value { get; }

    public LvmConfigSection? Section { get; }

    /// <summary>1-based line in the source text, 0 when built in code.</summary>
    public int Line { get; }

    /// <summary>1-based column in bytes.</summary>
    public int Column { get; }

    /// <summary>Offset of the key (text offset plus the parser's base offset), -1 when built in code.</summary>
    public long OffsetBytes { get; }
}

/// <summary>A section: ordered statements, unknown keys kept. Lookups follow libdm: the last duplicate wins.</summary>
public sealed class LvmConfigSection(string name)
{
    private readonly List<LvmConfigNode> _nodes = [];

    /// <summary>Section name; empty for the root.</summary>
    public string Name { get; } = name;

    /// <summary>Statements in file order.</summary>
    public IReadOnlyList<LvmConfigNode> Nodes => _nodes;

    /// <summary>Subsections in file order.</summary>
    public IEnumerable<LvmConfigSection> Sections => _nodes.Where(n => n.Section is not null).Select(n => n.Section!);

    /// <summary>The last statement named <paramref name="key"/>, or null.</summary>
    public LvmConfigNode? Find(string key)
    {
        for (var i = _nodes.Count - 1; i >= 0; i--)
        {
            if (_nodes[i].Key == key)
            {
                return _nodes[i];
            }
        }

        return null;
    }

    /// <summary>The value of <paramref name="key"/> when it is a value statement.</summary>
    public LvmConfigValue? Value(string key) => Find(key)?.Value;

    /// <summary>The subsection <paramref name="name"/>, or null.</summary>
    public LvmConfigSection? Section(string name) => Find(name)?.Section;

    /// <summary>String value of <paramref name="key"/>, or null when missing or not a string.</summary>
    public string? GetString(string key) => Value(key) is { Kind: LvmConfigValueKind.String } v ? v.Text : null;

    /// <summary>Integer value of <paramref name="key"/>, or null when missing, not an integer or out of range.</summary>
    public long? GetInt64(string key) => Value(key) is { Kind: LvmConfigValueKind.Integer } v ? v.Integer : null;

    /// <summary>The string elements of an array value (non-strings skipped); empty when missing.</summary>
    public IReadOnlyList<string> GetStrings(string key) =>
        Value(key) is { Kind: LvmConfigValueKind.Array } v
            ? v.Items.Where(i => i.Kind == LvmConfigValueKind.String).Select(i => i.Text).ToList()
            : [];

    /// <summary>Appends a statement.</summary>
    public void Add(LvmConfigNode node) => _nodes.Add(node);

    /// <summary>Replaces the value of the last statement named <paramref name="key"/> in place, or appends one.</summary>
    public void Set(string key, LvmConfigValue value)
    {
        for (var i = _nodes.Count - 1; i >= 0; i--)
        {
            if (_nodes[i].Key == key)
            {
                var old = _nodes[i];
                _nodes[i] = new LvmConfigNode(key, value, old.Line, old.Column, old.OffsetBytes);
                return;
            }
        }

        _nodes.Add(new LvmConfigNode(key, value));
    }

    /// <summary>Removes every statement named <paramref name="key"/>; returns how many.</summary>
    public int Remove(string key) => _nodes.RemoveAll(n => n.Key == key);
}
