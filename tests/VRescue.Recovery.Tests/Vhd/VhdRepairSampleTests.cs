// SPDX-License-Identifier: MIT
using VRescue.Recovery.Vhd;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>The vhd-util sample (XenServer layout), damaged in each way issue 6 names, repaired to its known content.</summary>
public sealed class VhdRepairSampleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdrepair-").FullName;
    private static readonly string s_expected = Samples.VhdUtilFacts("dynamic.vhd").GetProperty("guest_content_sha256").GetString()!;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Recipes => new() { "footer-killed", "both-footers-lost", "header-zeroed", "bat-entry-zeroed", "bat-entry-into-header", "footer-killed-and-header-zeroed" };

    private string Damaged(string recipe)
    {
        var path = VhdDamage.Copy(Samples.VhdUtilPath("dynamic.vhd"), _dir, recipe + ".vhd");
        switch (recipe)
        {
            case "footer-killed":
                VhdDamage.KillFooter(path);
                break;
            case "both-footers-lost":
                VhdDamage.KillFooter(path);
                VhdDamage.Fill(path, 0, 512, 0);
                break;
            case "header-zeroed":
                VhdDamage.Fill(path, 512, 1024, 0);
                break;
            case "bat-entry-zeroed":
                VhdDamage.SetBatEntry(path, 3, 0);
                break;
            case "bat-entry-into-header":
                VhdDamage.SetBatEntry(path, 15, 1);
                break;
            case "footer-killed-and-header-zeroed":
                VhdDamage.KillFooter(path);
                VhdDamage.Fill(path, 512, 1024, 0);
                break;
        }

        return path;
    }

    [RealTheory("qemu-img", "vhdiinfo")]
    [MemberData(nameof(Recipes))]
    public void Repair_restores_the_sample_content_and_never_writes_the_input(string recipe)
    {
        var input = Damaged(recipe);
        var before = Repo.Sha256File(input);
        using var target = VhdTarget.Open(input, null);

        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.Repairable, check.Verdict);
        Assert.Empty(check.BadRanges);
        Assert.NotEmpty(check.Repairs);
        Assert.All(check.Findings, f => Assert.True(f.OffsetBytes is not null || f.Code == "VHD_SIZE_INFERRED", f.Code));

        var raw = Path.Combine(_dir, recipe + ".raw");
        VhdInspection.Repair(target, raw, "raw", "test");
        Assert.Equal(s_expected, Repo.Sha256File(raw));

        var vhd = Path.Combine(_dir, recipe + ".out.vhd");
        var result = VhdInspection.Repair(target, vhd, "vhd", "test");
        Assert.Equal(s_expected, VhdDamage.QemuRawSha(vhd));
        Assert.Matches(@"Disk type\s*:\s*Dynamic", Repo.Run("vhdiinfo", $"\"{vhd}\""));
        Assert.Matches(@"Media size\s*:.*\(33554432 bytes\)", Repo.Run("vhdiinfo", $"\"{vhd}\""));
        Assert.Contains("+", File.ReadAllText(result.BadMapPath));
        Assert.DoesNotContain("  -\n", File.ReadAllText(result.BadMapPath));

        using var repaired = VhdTarget.Open(vhd, null);
        Assert.Equal(VhdVerdict.Clean, VhdInspection.Check(repaired).Report.Verdict);
        Assert.Equal(before, Repo.Sha256File(input));
    }

    [Fact]
    public void Two_lost_entries_without_filesystem_clues_are_listed_exactly_in_the_bad_map()
    {
        var input = VhdDamage.Copy(Samples.VhdUtilPath("dynamic.vhd"), _dir, "two-lost.vhd");
        VhdDamage.SetBatEntry(input, 0, 0);
        VhdDamage.SetBatEntry(input, 3, 0);
        using var target = VhdTarget.Open(input, null);
        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.DataLoss, check.Verdict);
        Assert.Equal([new VhdBadRange(0, 2 << 20, "BAT entry points into the footer copy"), new VhdBadRange(3L << 21, 2 << 20, "BAT entry points into the footer copy")],
            check.BadRanges);
        Assert.Equal(2, check.Orphans.Count);
        Assert.Equal(1, check.Blocks.FromBat);
    }

    [Fact]
    public void Truncated_sample_loses_exactly_the_written_sectors_past_the_end()
    {
        // Block 15 holds only its last sector (bitmap bit 4095); cutting 512 + 1024 bytes off removes that sector and the footer.
        var input = VhdDamage.Copy(Samples.VhdUtilPath("dynamic.vhd"), _dir, "truncated.vhd");
        using (var f = new FileStream(input, FileMode.Open, FileAccess.ReadWrite))
        {
            f.SetLength(f.Length - 1024);
        }

        using var target = VhdTarget.Open(input, null);
        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.DataLoss, check.Verdict);
        Assert.Equal([new VhdBadRange((16L << 21) - 512, 512, "block data past the end of the source (truncated)")], check.BadRanges);
    }

    [Fact]
    public void Output_that_is_the_input_is_refused_by_path_symlink_and_hard_link()
    {
        var input = VhdDamage.Copy(Samples.VhdUtilPath("dynamic.vhd"), _dir, "evidence.vhd");
        var before = Repo.Sha256File(input);
        var link = Path.Combine(_dir, "link.vhd");
        File.CreateSymbolicLink(link, input);
        var hard = Path.Combine(_dir, "hard.vhd");
        Repo.Run("ln", $"\"{input}\" \"{hard}\"");
        using var target = VhdTarget.Open(input, null);
        foreach (var output in new[] { input, link, hard, Path.Combine(_dir, ".", "evidence.vhd") })
        {
            Assert.Throws<OutputRefusedException>(() => VhdInspection.Repair(target, output, "raw", "test"));
        }

        Assert.Equal(before, Repo.Sha256File(input));
    }
}
