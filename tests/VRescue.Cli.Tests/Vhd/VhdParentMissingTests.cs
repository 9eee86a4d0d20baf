// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// `vhd repair` of the vhd-util chain leaf with its parent (chain-mid.vhd) gone: the partial result is written. The
/// expectations come from the samples, not from vrescue: the leaf's own sectors are read straight from the leaf's sector
/// bitmaps at the BAT sectors chain-leaf.json lists (their popcounts checked against its bitmap_sectors_set), and the
/// content from a read of the intact chain whose sha256 is chain-leaf.json's guest_content_sha256 (vhd-util read).
/// </summary>
public sealed class VhdParentMissingTests : IDisposable
{
    private const int SectorBytes = 512;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdpm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Leaf => Path.Combine(_dir, "chain-leaf.vhd");

    /// <summary>The three chain members copied into the test directory, then the "parent-missing" recipe (chain-mid.vhd removed).</summary>
    private string CopyChainAndRemoveParent()
    {
        foreach (var name in new[] { "chain-base.vhd", "chain-mid.vhd", "chain-leaf.vhd" })
        {
            File.Copy(Samples.VhdUtilPath(name), Path.Combine(_dir, name));
        }

        var full = FullGuestContent();
        VhdRecipes.Apply("parent-missing", Leaf, new VhdVictims(0, 0, null, null));
        Assert.False(File.Exists(Path.Combine(_dir, "chain-mid.vhd")));
        return full;
    }

    /// <summary>The whole chain's guest bytes, accepted only if their sha256 is the one vhd-util read gave (chain-leaf.json).</summary>
    private string FullGuestContent()
    {
        var raw = Path.Combine(_dir, "full.raw");
        var r = Cli.Run("vhd", "repair", Leaf, "--out", raw, "--format", "raw");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Samples.VhdUtilFacts("chain-leaf.vhd").GetProperty("guest_content_sha256").GetString(), Repo.Sha256File(raw));
        File.Delete(raw + ".badmap");
        return raw;
    }

    /// <summary>
    /// Guest sectors the leaf holds itself: for each block chain-leaf.json lists, the 512-byte sector bitmap at its BAT
    /// sector (VHD spec "Block bitmap", bit 7 of byte 0 is sector 0); every other sector comes from the parent.
    /// </summary>
    private static bool[] OwnSectors()
    {
        var facts = Samples.VhdUtilFacts("chain-leaf.vhd");
        var virtualSize = facts.GetProperty("virtual_size").GetInt64();
        const long blockBytes = 2 << 20;
        var own = new bool[virtualSize / SectorBytes];
        using var leaf = File.OpenHandle(Samples.VhdUtilPath("chain-leaf.vhd"));
        foreach (var block in facts.GetProperty("allocated_blocks").EnumerateObject())
        {
            var bitmap = new byte[SectorBytes];
            RandomAccess.Read(leaf, bitmap, block.Value.GetProperty("bat_sector").GetInt64() * SectorBytes);
            Assert.Equal(block.Value.GetProperty("bitmap_sectors_set").GetInt32(), bitmap.Sum(b => BitOperations.PopCount(b)));
            var first = long.Parse(block.Name) * blockBytes / SectorBytes;
            for (var s = 0; s < blockBytes / SectorBytes; s++)
            {
                own[first + s] = (bitmap[s / 8] & (0x80 >> (s % 8))) != 0;
            }
        }

        return own;
    }

    /// <summary>Runs of sectors not held by the leaf, as (offset, length) in bytes.</summary>
    private static List<(long Offset, long Length)> ParentRanges(bool[] own)
    {
        var ranges = new List<(long, long)>();
        for (var s = 0; s < own.Length;)
        {
            var e = s;
            while (e < own.Length && own[e] == own[s])
            {
                e++;
            }

            if (!own[s])
            {
                ranges.Add((s * (long)SectorBytes, (e - s) * (long)SectorBytes));
            }

            s = e;
        }

        return ranges;
    }

    private static List<(long Offset, long Length)> LostInBadMap(string badmap) =>
        File.ReadAllLines(badmap)
            .Where(l => !l.StartsWith('#') && l.EndsWith('-'))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(c => (Convert.ToInt64(c[0], 16), Convert.ToInt64(c[1], 16)))
            .ToList();

    [Fact]
    public void Repair_raw_of_a_leaf_whose_parent_is_missing_writes_its_own_sectors_and_lists_the_parent_ranges_in_the_badmap()
    {
        var full = CopyChainAndRemoveParent();
        var facts = Samples.VhdUtilFacts("chain-leaf.vhd");
        var before = Repo.Sha256File(Leaf);
        var output = Path.Combine(_dir, "leaf.raw");

        var r = Cli.Run("vhd", "repair", Leaf, "--out", output, "--format", "raw", "--json");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("data-loss", r.Json.GetProperty("check").GetProperty("verdict").GetString());
        Assert.True(r.Json.GetProperty("partial").GetBoolean());
        var missing = r.Json.GetProperty("check").GetProperty("missingParent");
        Assert.Equal(facts.GetProperty("parent_footer_uuid").GetString(), missing.GetProperty("uuid").GetString());
        Assert.Equal(facts.GetProperty("parent_name").GetString(), missing.GetProperty("name").GetString());
        Assert.Equal("not-found", missing.GetProperty("reason").GetString());

        var own = OwnSectors();
        var expectedLost = ParentRanges(own);
        Assert.Equal(expectedLost, LostInBadMap(output + ".badmap"));
        Assert.Equal(expectedLost.Sum(l => l.Length), missing.GetProperty("missingBytes").GetInt64());
        Assert.Equal(expectedLost.Sum(l => l.Length), r.Json.GetProperty("check").GetProperty("lostBytes").GetInt64());

        var got = File.ReadAllBytes(output);
        var want = File.ReadAllBytes(full);
        Assert.Equal(facts.GetProperty("virtual_size").GetInt64(), got.LongLength);
        for (var s = 0; s < own.Length; s++)
        {
            var span = got.AsSpan(s * SectorBytes, SectorBytes);
            Assert.True(own[s] ? span.SequenceEqual(want.AsSpan(s * SectorBytes, SectorBytes)) : !span.ContainsAnyExcept((byte)0),
                $"sector {s} ({(own[s] ? "the leaf's own: expected the chain's content" : "from the parent: expected zeros")})");
        }

        Assert.Equal(before, Repo.Sha256File(Leaf));
    }

    [Fact]
    public void Repair_of_a_leaf_whose_parent_is_missing_says_which_parent_and_that_supplying_it_completes_the_output()
    {
        CopyChainAndRemoveParent();
        var facts = Samples.VhdUtilFacts("chain-leaf.vhd");
        var output = Path.Combine(_dir, "leaf.raw");

        var r = Cli.Run("vhd", "repair", Leaf, "--out", output, "--format", "raw");

        Assert.Equal(2, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.Contains(facts.GetProperty("parent_footer_uuid").GetString()!, r.Stdout);
        Assert.Contains($"\"{facts.GetProperty("parent_name").GetString()}\"", r.Stdout);
        Assert.Contains("becomes complete once the parent is supplied", r.Stdout);
        Assert.Contains("becomes complete once the parent is supplied", File.ReadAllText(output + ".badmap"));
    }

    [Fact]
    public void Repair_of_a_leaf_whose_grandparent_is_missing_is_partial_and_names_the_missing_ancestor()
    {
        foreach (var name in new[] { "chain-mid.vhd", "chain-leaf.vhd" })
        {
            File.Copy(Samples.VhdUtilPath(name), Path.Combine(_dir, name));
        }

        var output = Path.Combine(_dir, "leaf.raw");

        var r = Cli.Run("vhd", "repair", Leaf, "--out", output, "--format", "raw", "--json");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("chain-broken", r.Json.GetProperty("check").GetProperty("missingParent").GetProperty("reason").GetString());
        Assert.Equal(ParentRanges(OwnSectors()), LostInBadMap(output + ".badmap"));
        var note = Assert.Single(r.Json.GetProperty("notes").EnumerateArray()).GetString()!;
        Assert.Contains(Samples.VhdUtilFacts("chain-mid.vhd").GetProperty("parent_footer_uuid").GetString()!, note);
        Assert.Contains("\"chain-base.vhd\"", note);
    }

    [Fact]
    public void Repair_vhd_of_a_differencing_leaf_whose_header_is_lost_is_refused_with_a_clear_message_and_nothing_written()
    {
        CopyChainAndRemoveParent();
        using (var f = new FileStream(Leaf, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 512; // VHD spec: dynamic header at the footer's data offset, 0x200 in SM's layout; 1024 bytes
            f.Write(new byte[1024]);
        }

        var output = Path.Combine(_dir, "leaf.vhd");

        var r = Cli.Run("vhd", "repair", Leaf, "--out", output, "--format", "vhd");

        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("use --format raw", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.False(File.Exists(output));
        var raw = Cli.Run("vhd", "repair", Leaf, "--out", output + ".raw", "--format", "raw", "--json");
        Assert.Equal(2, raw.ExitCode);
        Assert.Equal("header-lost", raw.Json.GetProperty("check").GetProperty("missingParent").GetProperty("reason").GetString());
        Assert.Equal(ParentRanges(OwnSectors()), LostInBadMap(output + ".raw.badmap"));
    }

    [RealFact("vhdiinfo", "vhdimount", "fusermount")]
    public void Repair_vhd_of_a_leaf_whose_parent_is_missing_writes_a_differencing_vhd_that_reads_whole_once_the_parent_is_back()
    {
        CopyChainAndRemoveParent();
        var facts = Samples.VhdUtilFacts("chain-leaf.vhd");
        var before = Repo.Sha256File(Leaf);
        var output = Path.Combine(_dir, "leaf-repaired.vhd");

        var r = Cli.Run("vhd", "repair", Leaf, "--out", output, "--format", "vhd", "--json");

        Assert.Equal(2, r.ExitCode);
        Assert.True(r.Json.GetProperty("partial").GetBoolean());
        Assert.Equal(ParentRanges(OwnSectors()), LostInBadMap(output + ".badmap"));
        var info = VhdPeers.Run("vhdiinfo", output).Stdout;
        Assert.Matches(@"Disk type\s*:\s*Differential", info);
        Assert.Matches(@"Parent identifier\s*:\s*" + Samples.VhdUtilFacts("chain-mid.vhd").GetProperty("footer_uuid").GetString(), info);
        Assert.Matches(@"Parent filename\s*:\s*" + facts.GetProperty("parent_name").GetString(), info);

        // The parent turns up: put it beside the output and libvhdi reads the whole chain through it.
        File.Copy(Samples.VhdUtilPath("chain-mid.vhd"), Path.Combine(_dir, "chain-mid.vhd"));
        Assert.Equal("right content", VhdPeers.Vhdimount(output, facts.GetProperty("guest_content_sha256").GetString()!));
        Assert.Equal(before, Repo.Sha256File(Leaf));
    }
}
