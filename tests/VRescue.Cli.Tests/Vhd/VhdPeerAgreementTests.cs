// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// Every damage class the repair recipes cover, applied to the vhd-util samples and given to `vrescue vhd check|repair`,
/// libvhdi (vhdiinfo, vhdimount) and qemu (qemu-img info, convert -f vpc). What each tool did must be what the
/// checked-in table docs/vhd-agreement.md says, so a change in any of them (ours or a peer's) fails here and the
/// failure prints the row as observed. Content is judged by sha256 against the vhd-util sample's guest_content_sha256.
/// </summary>
public sealed class VhdPeerAgreementTests : IDisposable
{
    private static readonly string s_table = Path.Combine(Repo.Root, "docs", "vhd-agreement.md");
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdpeers-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static readonly string[] AllRecipes = ["clean", .. VhdRecipes.Dynamic, "chain-clean", .. VhdRecipes.Differencing];

    public static TheoryData<string> Recipes => new(AllRecipes);

    /// <summary>Victims from dynamic.json: the partially written block and the full one (batmap bit set).</summary>
    private static VhdVictims SampleVictims()
    {
        var facts = Samples.VhdUtilFacts("dynamic.vhd");
        var partial = facts.GetProperty("allocated_blocks").EnumerateObject()
            .First(b => b.Value.GetProperty("bitmap_sectors_set").GetInt32() is > 1 and < 4096).Name;
        var full = facts.GetProperty("batmap").GetProperty("full_blocks")[0].GetInt64();
        return new VhdVictims(long.Parse(partial), full, long.Parse(partial), full);
    }

    private static bool IsChain(string recipe) => recipe == "chain-clean" || VhdRecipes.Differencing.Contains(recipe);

    /// <summary>The table rows by recipe: cells after the recipe name, "why" last.</summary>
    private static Dictionary<string, string[]> Table() =>
        File.ReadAllLines(s_table)
            .Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .Select(l => l.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray())
            .ToDictionary(c => c[0].Trim('`'), c => c[1..]);

    [Fact]
    public void The_table_has_one_row_per_damage_class_and_no_other()
    {
        Assert.Equal(AllRecipes.Order(StringComparer.Ordinal), Table().Keys.Order(StringComparer.Ordinal));
        Assert.All(Table().Values, row => Assert.True(row.Length == 7 && row[^1].Length > 0, "6 observed cells and with a reason: " + string.Join(" | ", row)));
    }

    [RealTheory("qemu-img", "vhdiinfo", "vhdimount", "fusermount")]
    [MemberData(nameof(Recipes))]
    public void Check_and_the_peers_behave_as_the_agreement_table_records(string recipe)
    {
        var chain = IsChain(recipe);
        var sample = chain ? "chain-leaf.vhd" : "dynamic.vhd";
        var expected = Samples.VhdUtilFacts(sample).GetProperty("guest_content_sha256").GetString()!;
        if (chain)
        {
            foreach (var parent in new[] { "chain-base.vhd", "chain-mid.vhd" })
            {
                File.Copy(Samples.VhdUtilPath(parent), Path.Combine(_dir, parent));
            }
        }

        var vhd = Path.Combine(_dir, chain ? "chain-leaf.vhd" : recipe + ".vhd");
        File.Copy(Samples.VhdUtilPath(sample), vhd);
        var original = OriginalGuest(chain);
        Assert.Equal(expected, Repo.Sha256File(original));
        if (recipe is not ("clean" or "chain-clean"))
        {
            VhdRecipes.Apply(recipe, vhd, SampleVictims());
        }

        var before = Repo.Sha256File(vhd);
        var check = Cli.Run("vhd", "check", vhd, "--json");
        Assert.True(check.Stdout.StartsWith('{'), check.Stderr);
        var observed = new[]
        {
            CheckCell(check),
            RepairCell(vhd, original, expected),
            VhdPeers.Vhdiinfo(vhd),
            VhdPeers.Vhdimount(vhd, expected),
            VhdPeers.QemuInfo(vhd),
            VhdPeers.QemuConvert(vhd, expected),
        };
        Assert.Equal(before, Repo.Sha256File(vhd));

        var table = Table();
        var recorded = table.GetValueOrDefault(recipe);
        var why = recorded?[^1] ?? "(why they disagree)";
        var row = $"| `{recipe}` | {string.Join(" | ", observed)} | {why} |";
        Assert.True(recorded is not null && recorded[..^1].SequenceEqual(observed),
            $"{recipe}: the tools no longer behave as docs/vhd-agreement.md records; observed row:\n{row}");
    }

    /// <summary>The guest content as the peers agree on it for the undamaged sample, to compare a lossy repair outside its lost ranges.</summary>
    private string OriginalGuest(bool chain)
    {
        var raw = Path.Combine(_dir, "original.raw");
        if (!File.Exists(raw))
        {
            var r = chain
                ? Cli.Run("vhd", "repair", Path.Combine(_dir, "chain-leaf.vhd"), "--out", raw, "--format", "raw")
                : Cli.Run("vhd", "repair", Samples.VhdUtilPath("dynamic.vhd"), "--out", raw, "--format", "raw");
            Assert.Equal(0, r.ExitCode);
            File.Delete(raw + ".badmap");
        }

        return raw;
    }

    /// <summary>"EXIT verdict: CODE, CODE" (distinct finding codes, ordinal order).</summary>
    private static string CheckCell(Cli.Result check)
    {
        var codes = check.Json.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("code").GetString()!).Distinct().Order(StringComparer.Ordinal);
        var list = string.Join(", ", codes);
        return $"{check.ExitCode} {check.Json.GetProperty("verdict").GetString()}{(list.Length > 0 ? ": " + list : "")}";
    }

    /// <summary>"EXIT right content", or "EXIT right except N bytes lost (.badmap)" comparing outside the lost ranges, or "EXIT error: ...".</summary>
    private string RepairCell(string vhd, string original, string expected)
    {
        var output = Path.Combine(_dir, "repaired.raw");
        var r = Cli.Run("vhd", "repair", vhd, "--out", output, "--format", "raw");
        if (!File.Exists(output))
        {
            return $"{r.ExitCode} error: {r.Stderr.Trim().Split('\n')[0].Replace(_dir + "/", "", StringComparison.Ordinal)}";
        }

        var lost = File.ReadAllLines(output + ".badmap")
            .Where(l => !l.StartsWith('#') && l.EndsWith('-'))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(c => (Offset: Convert.ToInt64(c[0], 16), Length: Convert.ToInt64(c[1], 16)))
            .ToList();
        try
        {
            if (lost.Count == 0)
            {
                return $"{r.ExitCode} {VhdPeers.Content(Repo.Sha256File(output), expected)}";
            }

            var got = File.ReadAllBytes(output);
            var want = File.ReadAllBytes(original);
            foreach (var (offset, length) in lost)
            {
                got.AsSpan((int)offset, (int)length).Clear();
                want.AsSpan((int)offset, (int)length).Clear();
            }

            var rest = got.AsSpan().SequenceEqual(want) ? "right except" : "wrong content and";
            return $"{r.ExitCode} {rest} {lost.Sum(l => l.Length)} bytes lost (.badmap)";
        }
        finally
        {
            File.Delete(output);
            File.Delete(output + ".badmap");
        }
    }
}
