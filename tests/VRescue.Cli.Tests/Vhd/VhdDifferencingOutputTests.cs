// SPDX-License-Identifier: MIT
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// `vhd repair --format vhd` of a damaged differencing leaf writes a differencing VHD naming the parent it found;
/// libvhdi's vhdimount, which follows locators, reads the chain through it to the vhd-util sample's content.
/// (qemu's vpc driver has no backing-file support, so it cannot judge any differencing VHD: docs/vhd-agreement.md.)
/// </summary>
public sealed class VhdDifferencingOutputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhddiff-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Recipes => new() { "footer-killed", "header-checksum-bad", "parent-locator-text-wiped", "parent-locator-out-of-range" };

    [RealTheory("vhdiinfo", "vhdimount", "fusermount")]
    [MemberData(nameof(Recipes))]
    public void Differencing_output_names_its_parent_and_reads_back_through_the_chain(string recipe)
    {
        foreach (var name in new[] { "chain-base.vhd", "chain-mid.vhd", "chain-leaf.vhd" })
        {
            File.Copy(Samples.VhdUtilPath(name), Path.Combine(_dir, name));
        }

        var leaf = Path.Combine(_dir, "chain-leaf.vhd");
        VhdRecipes.Apply(recipe, leaf, new VhdVictims(0, 0, null, null));
        var before = Repo.Sha256File(leaf);
        var output = Path.Combine(_dir, "leaf-repaired.vhd");

        var r = Cli.Run("vhd", "repair", leaf, "--out", output, "--format", "vhd", "--json");

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("differencing", r.Json.GetProperty("check").GetProperty("diskType").GetString());
        var info = VhdPeers.Run("vhdiinfo", output).Stdout;
        Assert.Matches(@"Disk type\s*:\s*Differential", info);
        Assert.Matches(@"Parent identifier\s*:\s*" + Samples.VhdUtilFacts("chain-mid.vhd").GetProperty("footer_uuid").GetString(), info);
        var expected = Samples.VhdUtilFacts("chain-leaf.vhd").GetProperty("guest_content_sha256").GetString()!;
        Assert.Equal("right content", VhdPeers.Vhdimount(output, expected));
        var check = Cli.Run("vhd", "check", output, "--json");
        Assert.Equal(0, check.ExitCode);
        Assert.Equal(3, check.Json.GetProperty("chain").GetArrayLength());
        Assert.Equal(before, Repo.Sha256File(leaf));
    }
}
