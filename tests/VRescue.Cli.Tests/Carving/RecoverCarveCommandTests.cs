// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Carving;

/// <summary>
/// `vrescue recover` falls back on carving (issue 8) through the real command tree: on damaged.img (label and metadata
/// ring zeroed) and on recreated.img (a new SR created over the old one). Expected values are the generator's
/// (tests/fixtures/carve: facts.json, recreated-facts.json; guest sha256 of the source images, lvm2 reports).
/// </summary>
public class RecoverCarveCommandTests
{
    private static string Dir => Path.Combine(Repo.FixtureCache, "carve");

    private static JsonElement Load(string name) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, name))).RootElement;

    [RealFact("sha256sum", Fixture = "carve")]
    public void Recover_without_any_metadata_carves_and_exports_every_vdi_byte_identical()
    {
        var image = Path.Combine(Dir, "damaged.img");
        var before = Repo.Sha256File(image);
        var facts = Load("facts.json");
        var outDir = Directory.CreateTempSubdirectory("vrescue-recover-carve-").FullName;
        try
        {
            var r = Cli.Run("recover", image, "--out", outDir, "--format", "raw", "--json");

            Assert.Equal(ExitCodes.Damaged, r.ExitCode);                          // the fragmented raw VDI cannot be proven
            Assert.Equal("lvm-metadata-damaged", r.Json.GetProperty("failureMode").GetString());   // the generator zeroed label and ring
            Assert.DoesNotContain("partition", r.Json.GetProperty("diagnosis").GetString());     // whole-disk PV: the grid is at the usual pe_start
            var metadata = r.Json.GetProperty("metadata").EnumerateArray().ToList();
            Assert.Contains(metadata, m => m.GetProperty("kind").GetString() == "carved" && m.GetProperty("used").GetBoolean());
            var recovered = r.Json.GetProperty("recovered").EnumerateArray().ToList();

            // Every VDI of the fixture except the hidden base copy (exported through its child, the snapshot leaf).
            var expected = facts.GetProperty("vdis").EnumerateArray().Where(f => f.GetProperty("hidden").GetInt32() == 0).ToList();
            var raws = facts.GetProperty("rawVdis").EnumerateArray().ToList();
            Assert.Equal(expected.Count + 1, recovered.Count);
            AssertRaw(recovered, raws, r.Json, outDir);
            foreach (var fact in expected)
            {
                var v = recovered.Single(x => x.GetProperty("carve").GetProperty("footerUuid").GetString() == fact.GetProperty("footerUuid").GetString());
                Assert.Equal("carved", v.GetProperty("source").GetProperty("kind").GetString());
                Assert.Equal("exported", v.GetProperty("status").GetString());
                var confidence = v.GetProperty("carve").GetProperty("minConfidence").GetDouble();
                Assert.InRange(confidence, 0.0, 1.0);
                Assert.Contains(v.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("recovered by carving", StringComparison.Ordinal));
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), Repo.Sha256File(Path.Combine(outDir, v.GetProperty("file").GetString()!)));
            }

            Assert.True(File.Exists(Path.Combine(outDir, "carved.vg")));
            Assert.True(File.Exists(Path.Combine(outDir, "manifest.json")));
            Assert.Equal(before, Repo.Sha256File(image));
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    /// <summary>The contiguous raw VDI is exported byte-identical; the fragmented one is listed as not recovered.</summary>
    private static void AssertRaw(List<JsonElement> recovered, List<JsonElement> raws, JsonElement report, string outDir)
    {
        var contiguous = raws.Single(x => x.GetProperty("contiguous").GetBoolean());
        var fragmented = raws.Single(x => !x.GetProperty("contiguous").GetBoolean());
        var got = recovered.Single(x => x.GetProperty("uuid").GetString() == contiguous.GetProperty("fsUuid").GetString());
        Assert.Equal("carved", got.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(contiguous.GetProperty("sha256").GetString(), got.GetProperty("sha256").GetString());
        Assert.Equal(contiguous.GetProperty("sha256").GetString(), Repo.Sha256File(Path.Combine(outDir, got.GetProperty("file").GetString()!)));
        var missing = report.GetProperty("notRecovered").EnumerateArray().Single(x => x.GetProperty("uuid").GetString() == fragmented.GetProperty("fsUuid").GetString());
        Assert.Contains("CARVE_RAW_UNPROVEN", missing.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [RealFact("sha256sum", Fixture = "carve")]
    public void Recover_on_a_recreated_sr_exports_the_new_vdis_from_metadata_and_the_old_ones_carved()
    {
        var image = Path.Combine(Dir, "recreated.img");
        var before = Repo.Sha256File(image);
        var facts = Load("recreated-facts.json");
        var original = Load("facts.json");
        var outDir = Directory.CreateTempSubdirectory("vrescue-recover-recreated-").FullName;
        try
        {
            var r = Cli.Run("recover", image, "--out", outDir, "--format", "raw", "--json");

            Assert.Equal(ExitCodes.Damaged, r.ExitCode);                           // the old VDI B is partial
            var recovered = r.Json.GetProperty("recovered").EnumerateArray().ToList();

            // New VDIs: from the current metadata, never carved.
            foreach (var fact in facts.GetProperty("newVdis").EnumerateArray())
            {
                var uuid = fact.GetProperty("lvName").GetString()!["VHD-".Length..];
                var v = recovered.Single(x => x.GetProperty("uuid").GetString() == uuid);
                Assert.Equal("current", v.GetProperty("source").GetProperty("kind").GetString());
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
                Assert.DoesNotContain(recovered, x => x.TryGetProperty("carve", out var c) && c.ValueKind == JsonValueKind.Object
                    && c.GetProperty("footerUuid").GetString() == fact.GetProperty("footerUuid").GetString());
            }

            // Old VDIs (all but the hidden base copy, which is read through its child): carved, byte-identical where their
            // extents survive, partial with exactly the guest blocks stored on PEs the new VG took.
            var old = facts.GetProperty("oldVdis").EnumerateArray()
                .Where(f => original.GetProperty("vdis").EnumerateArray().Single(o => o.GetProperty("lvName").GetString() == f.GetProperty("lvName").GetString())
                    .GetProperty("hidden").GetInt32() == 0).ToList();
            var carved = recovered.Where(x => x.GetProperty("source").GetProperty("kind").GetString() == "carved").ToList();
            Assert.Equal(old.Count + 1, carved.Count);                            // + the contiguous raw VDI
            AssertRaw(recovered, original.GetProperty("rawVdis").EnumerateArray().ToList(), r.Json, outDir);
            foreach (var fact in old)
            {
                var v = carved.Single(x => x.GetProperty("carve").GetProperty("footerUuid").GetString() == fact.GetProperty("footerUuid").GetString());
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), Repo.Sha256File(Path.Combine(outDir, v.GetProperty("file").GetString()!)));
                var lost = fact.GetProperty("unreadableGuestRanges").EnumerateArray().Select(x => (x[0].GetInt64(), x[1].GetInt64())).ToList();
                if (lost.Count == 0)
                {
                    Assert.Equal("exported", v.GetProperty("status").GetString());
                    Assert.Equal(fact.GetProperty("originalGuestSha256").GetString(), v.GetProperty("sha256").GetString());
                    continue;
                }

                Assert.Equal("partial", v.GetProperty("status").GetString());
                Assert.Equal(Ranges.Merge(lost), v.GetProperty("unreadableRanges").EnumerateArray()
                    .Select(x => (x.GetProperty("offsetBytes").GetInt64(), x.GetProperty("lengthBytes").GetInt64())));
                Assert.Contains(v.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("CARVE_EXTENTS_OVERWRITTEN", StringComparison.Ordinal));
            }

            Assert.Equal(before, Repo.Sha256File(image));
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}
