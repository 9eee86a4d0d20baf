// SPDX-License-Identifier: MIT
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Carving;

/// <summary>`vrescue carve` through the real command tree.</summary>
public class CarveCommandTests
{
    private static string Image => Path.Combine(Repo.FixtureCache, "carve", "damaged.img");

    [RealFact("sha256sum", Fixture = "carve")]
    public void Carve_json_writes_manifest_vg_and_raw_images_into_out_only()
    {
        var before = Repo.Sha256File(Image);
        var outDir = Directory.CreateTempSubdirectory("vrescue-carve-cli-").FullName;
        try
        {
            var r = Cli.Run("carve", Image, "--out", outDir, "--json");

            Assert.Contains(r.ExitCode, new[] { ExitCodes.Ok, ExitCodes.Warnings, ExitCodes.Damaged });
            var json = r.Json;
            Assert.Equal(5, json.GetProperty("vdis").GetArrayLength());
            Assert.True(File.Exists(Path.Combine(outDir, "carved.vg")));
            Assert.True(File.Exists(Path.Combine(outDir, "manifest.json")));
            foreach (var v in json.GetProperty("vdis").EnumerateArray())
            {
                Assert.True(File.Exists(Path.Combine(outDir, v.GetProperty("rawFile").GetString()!)));
                Assert.All(v.GetProperty("extents").EnumerateArray(), e => Assert.True(e.GetProperty("evidence").GetArrayLength() > 0));
            }

            Assert.Equal(before, Repo.Sha256File(Image));
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    /// <summary>The text output says which VDIs hold guessed data, as many as the manifest lists guessedRanges for.</summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void Carve_text_names_every_vdi_with_guessed_ranges()
    {
        var outDir = Directory.CreateTempSubdirectory("vrescue-carve-cli-").FullName;
        try
        {
            var r = Cli.Run("carve", Image, "--out", outDir);

            var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json"))).RootElement;
            var guessed = manifest.GetProperty("vdis").EnumerateArray().Count(v => v.GetProperty("guessedRanges").GetArrayLength() > 0);
            Assert.True(guessed > 0, "the fixture's indistinguishable pair is guessed");
            Assert.Equal(guessed, r.Stdout.Split('\n').Count(l => l.TrimStart().StartsWith("guessed: ", StringComparison.Ordinal)));
            Assert.Equal(guessed, r.Stdout.Split('\n').Count(l => l.Contains("[ok, part guessed]", StringComparison.Ordinal)));
            Assert.NotEqual(ExitCodes.Ok, r.ExitCode); // 1 for guesses; this fixture also has an unproven raw VDI (2)
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    [Fact]
    public void Carve_refuses_an_out_dir_that_holds_the_source()
    {
        var dir = Directory.CreateTempSubdirectory("vrescue-carve-src-").FullName;
        try
        {
            var src = Path.Combine(dir, "pv.img");
            File.WriteAllBytes(src, new byte[1 << 20]);
            var r = Cli.Run("carve", src, "--out", dir);
            Assert.Equal(ExitCodes.Usage, r.ExitCode);
            Assert.Contains("holds the source", r.Stderr);
            Assert.Equal([src], Directory.GetFiles(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Carve_without_out_is_a_usage_error()
    {
        Assert.Equal(ExitCodes.Usage, Cli.Run("carve", "x.img").ExitCode);
    }
}
