// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;

namespace VRescue.Formats.Tests.Lvm;

public class LvmConfigParserTests
{
    /// <summary>A hang guard, not a speed check: bounded work finishes far below it even on a loaded machine.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    private static LvmConfigParseResult Parse(string s) => LvmConfigParser.Parse(Encoding.UTF8.GetBytes(s));

    [Fact]
    public void Values_strings_escapes_arrays_and_comments()
    {
        var r = Parse("""
            # comment
            a = 1 # trailing
            b = -42
            c = "say \"hi\" \\ and \n kept"
            d = 'single \" literal'
            e = ["pv0", 24, "pv1" 36]
            f = []
            g = 0.5
            h = bare
            i = 010
            s { t { u = 9223372036854775807 } }
            """);
        Assert.True(r.Complete, string.Join("\n", r.Findings));
        var root = r.Root;
        Assert.Equal(1, root.GetInt64("a"));
        Assert.Equal(-42, root.GetInt64("b"));
        Assert.Equal("say \"hi\" \\ and \\n kept", root.GetString("c"));
        Assert.Equal("single \\\" literal", root.GetString("d"));
        var e = root.Value("e")!;
        Assert.Equal(["pv0", "24", "pv1", "36"], e.Items.Select(i => i.Text));
        Assert.Equal(LvmConfigValueKind.Integer, e.Items[1].Kind);
        Assert.Empty(root.Value("f")!.Items);
        Assert.Equal(LvmConfigValueKind.Float, root.Value("g")!.Kind);
        Assert.Equal("bare", root.GetString("h"));
        Assert.Equal(8, root.GetInt64("i")); // strtoll base 0, as libdm
        Assert.Equal(long.MaxValue, root.Section("s")!.Section("t")!.GetInt64("u"));
    }

    [Fact]
    public void Parsing_stops_at_the_first_nul()
    {
        var r = LvmConfigParser.Parse("a = 1\n\0garbage {{{"u8);
        Assert.True(r.Complete);
        Assert.Equal(6, r.LengthBytes);
    }

    [Fact]
    public void Errors_carry_line_column_and_offset()
    {
        var r = LvmConfigParser.Parse("a = 1\nb = 2\n  c ! 3\n"u8, 1000);
        var f = Assert.Single(r.Findings);
        Assert.Equal("LVM_TEXT_SYNTAX", f.Code);
        Assert.Contains("line 3 column 5", f.Message);
        Assert.Equal(1000 + 16, f.OffsetBytes);
        Assert.Equal(2, r.Root.Nodes.Count); // the tree up to the error stays
        Assert.Throws<CorruptDataException>(() => LvmConfigParser.ParseStrict("x = ]"u8));
    }

    [Fact]
    public void Deep_nesting_stops_at_the_depth_limit_without_stack_overflow()
    {
        var text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("a{", 100_000)));
        var r = LvmConfigParser.Parse(text);
        var f = Assert.Single(r.Findings);
        Assert.Equal("LVM_TEXT_DEPTH", f.Code);
        Assert.Equal(2 * LvmConfigParser.MaxDepth + 1, f.OffsetBytes);
    }

    [Fact]
    public void Twenty_digit_integers_are_kept_as_text_with_a_warning()
    {
        var r = Parse("creation_time = 18446744073709551616\nn = -99999999999999999999\n");
        Assert.True(r.Complete);
        Assert.Equal(2, r.Findings.Count(f => f.Code == "LVM_TEXT_INTEGER_RANGE"));
        var v = r.Root.Value("creation_time")!;
        Assert.Null(v.Integer);
        Assert.Equal("18446744073709551616", v.Text);
    }

    [Fact]
    public void Unterminated_string_reports_where_it_opened()
    {
        var r = Parse("a = 1\nb = \"never closed\nc = 2\n" + new string('x', 100_000));
        var f = Assert.Single(r.Findings);
        Assert.Equal("LVM_TEXT_UNTERMINATED_STRING", f.Code);
        Assert.Contains("line 2 column 5", f.Message);
        Assert.Equal(10, f.OffsetBytes);
    }

    [Fact]
    public void Truncated_text_keeps_the_sections_read_so_far()
    {
        var cut = LvmSamples.OnDisk[..(LvmSamples.OnDisk.IndexOf("lv2 {", StringComparison.Ordinal) + 20)];
        var r = Parse(cut);
        Assert.Contains(r.Findings, f => f.Severity == Severity.Error && f.Code.StartsWith("LVM_TEXT_", StringComparison.Ordinal));
        var vg = r.Root.Section("VG_XenStorage-abc")!;
        Assert.NotNull(vg.Section("logical_volumes")!.Section("lv1"));
    }

    [Fact]
    public void Duplicate_keys_warn_and_the_last_wins()
    {
        var r = Parse("a = 1\na = 2\n");
        Assert.Contains(r.Findings, f => f.Code == "LVM_TEXT_DUPLICATE_KEY");
        Assert.Equal(2, r.Root.GetInt64("a"));
    }

    [Fact]
    public void Hundred_megabytes_of_random_bytes_finish_quickly_with_findings()
    {
        var garbage = new byte[100 * 1024 * 1024];
        new Random(1).NextBytes(garbage);
        var sw = Stopwatch.StartNew();
        var r = LvmConfigParser.Parse(garbage);
        Assert.False(r.Complete);

        // Without NULs the size limit refuses it before any work.
        garbage.AsSpan().Replace((byte)0, (byte)'{');
        var r2 = LvmConfigParser.Parse(garbage);
        Assert.Equal("LVM_TEXT_TOO_LARGE", Assert.Single(r2.Findings).Code);

        // Valid-looking but huge: the node limit stops it.
        var many = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("k = [1,2,3,4,5,6,7]\n", 1_000_000)));
        var r3 = LvmConfigParser.Parse(many);
        Assert.Contains(r3.Findings, f => f.Code == "LVM_TEXT_TOO_MANY_NODES");
        Assert.True(sw.Elapsed < HangGuard, sw.Elapsed.ToString());

        var meta = LvmMetadata.Parse(garbage.AsSpan(0, 10 * 1024 * 1024));
        Assert.NotEmpty(meta.Findings);
    }

    [Fact]
    public void Random_short_inputs_never_throw()
    {
        var rng = new Random(3);
        var alphabet = "ab01-= {}[]\",#\n\t'\\."u8.ToArray();
        var buf = new byte[200];
        for (var i = 0; i < 5000; i++)
        {
            for (var j = 0; j < buf.Length; j++)
            {
                buf[j] = alphabet[rng.Next(alphabet.Length)];
            }

            var m = LvmMetadata.Parse(buf);
            Assert.NotNull(m.Root);
        }
    }
}
