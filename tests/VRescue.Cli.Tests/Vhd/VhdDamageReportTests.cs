// SPDX-License-Identifier: MIT
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// How `vhd check|repair` name damage that leaves no lost guest range of its own: a file cut short (VHD_TRUNCATED, not
/// a "zeroed footer") and a block whose BAT entry says unallocated (an orphan: reported with its offsets, verdict data
/// loss). Expected values come from dynamic.json (vhd-util facts: file_size, allocated_blocks) and the sample's
/// guest_content_sha256, never from vrescue.
/// </summary>
public sealed class VhdDamageReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhddmg-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Damaged(string recipe, VhdVictims victims)
    {
        var vhd = Path.Combine(_dir, recipe + ".vhd");
        File.Copy(Samples.VhdUtilPath("dynamic.vhd"), vhd);
        VhdRecipes.Apply(recipe, vhd, victims);
        return vhd;
    }

    [Fact]
    public void Truncated_vhd_is_reported_as_truncated_against_the_end_its_bat_implies_and_stays_data_loss()
    {
        var fileSize = Samples.VhdUtilFacts("dynamic.vhd").GetProperty("file_size").GetInt64();
        var vhd = Damaged("truncated", new VhdVictims(0, 0, null, null));
        var before = Repo.Sha256File(vhd);

        var r = Cli.Run("vhd", "check", vhd, "--json");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("data-loss", r.Json.GetProperty("verdict").GetString());
        var findings = r.Json.GetProperty("findings").EnumerateArray().ToList();
        var t = Assert.Single(findings, f => f.GetProperty("code").GetString() == "VHD_TRUNCATED");
        Assert.Equal(fileSize - VhdRecipes.TruncatedBytes, t.GetProperty("offsetBytes").GetInt64());
        Assert.Equal((fileSize - VhdRecipes.TruncatedBytes).ToString(), t.GetProperty("stored").GetString());
        Assert.Equal(fileSize.ToString(), t.GetProperty("expected").GetString());
        Assert.DoesNotContain(findings, f => f.GetProperty("code").GetString() == "VHD_FOOTER_ZEROED");
        Assert.Contains(r.Json.GetProperty("repairs").EnumerateArray(), x => x.GetString()!.Contains("cut off", StringComparison.Ordinal));
        Assert.Equal(before, Repo.Sha256File(vhd));
    }

    [Theory]
    [InlineData("footer-killed")]
    [InlineData("footer-zeroed")]
    public void A_lost_end_footer_in_a_file_of_full_length_is_not_called_truncation(string recipe)
    {
        var vhd = Damaged(recipe, new VhdVictims(0, 0, null, null));

        var r = Cli.Run("vhd", "check", vhd, "--json");

        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain(r.Json.GetProperty("findings").EnumerateArray(), f => f.GetProperty("code").GetString() == "VHD_TRUNCATED");
    }

    [Fact]
    public void Repair_reports_the_orphan_of_an_unallocated_bat_entry_with_its_offsets_in_json_and_badmap_and_stays_data_loss()
    {
        var facts = Samples.VhdUtilFacts("dynamic.vhd");
        // The full block (4096 sectors): its data area is exactly its guest bytes (no clear bitmap bits).
        var (victim, fact) = facts.GetProperty("allocated_blocks").EnumerateObject()
            .Select(b => (Block: long.Parse(b.Name), Fact: b.Value))
            .First(b => b.Fact.GetProperty("bitmap_sectors_set").GetInt32() == 4096);
        var bitmapAt = fact.GetProperty("bat_sector").GetInt64() * 512;
        const long blockBytes = 2 << 20;
        var original = Path.Combine(_dir, "original.raw");
        Assert.Equal(0, Cli.Run("vhd", "repair", Samples.VhdUtilPath("dynamic.vhd"), "--out", original, "--format", "raw").ExitCode);
        Assert.Equal(facts.GetProperty("guest_content_sha256").GetString(), Repo.Sha256File(original));

        var vhd = Damaged("bat-entry-unallocated", new VhdVictims(victim, 0, null, null));
        var before = Repo.Sha256File(vhd);
        var output = Path.Combine(_dir, "out.raw");

        var r = Cli.Run("vhd", "repair", vhd, "--out", output, "--format", "raw", "--json");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("data-loss", r.Json.GetProperty("check").GetProperty("verdict").GetString());
        Assert.True(r.Json.GetProperty("partial").GetBoolean());
        var orphan = Assert.Single(r.Json.GetProperty("check").GetProperty("orphans").EnumerateArray());
        Assert.Equal(bitmapAt, orphan.GetProperty("bitmapOffsetBytes").GetInt64());
        Assert.Equal(bitmapAt + 512, orphan.GetProperty("dataOffsetBytes").GetInt64());
        Assert.Equal(blockBytes, orphan.GetProperty("dataSizeBytes").GetInt64());
        Assert.Equal(4096, orphan.GetProperty("sectorsPresent").GetInt32());
        var note = Assert.Single(r.Json.GetProperty("notes").EnumerateArray()).GetString()!;
        Assert.Contains($"file offset 0x{bitmapAt:X}", note);
        Assert.Contains("guest position is unknown", note);
        var badmap = File.ReadAllLines(output + ".badmap");
        Assert.Contains("# " + note, badmap);

        // Nothing lost silently: the bytes the note points at are the victim block's guest content.
        var data = new byte[blockBytes];
        using (var h = File.OpenHandle(vhd))
        {
            RandomAccess.Read(h, data, orphan.GetProperty("dataOffsetBytes").GetInt64());
        }

        var want = new byte[blockBytes];
        using (var h = File.OpenHandle(original))
        {
            RandomAccess.Read(h, want, victim * blockBytes);
        }

        Assert.True(data.AsSpan().SequenceEqual(want));
        Assert.Equal(before, Repo.Sha256File(vhd));
    }
}
