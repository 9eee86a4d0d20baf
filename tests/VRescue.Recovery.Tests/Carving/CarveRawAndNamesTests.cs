// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.Recovery.Carving;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Raw VDIs found by their guest ext4, and MGT names, on damaged.img of tests/fixtures/carve. Truth: lvm2's segment
/// maps of the two raw LVs (one allocated with --alloc contiguous, one in two runs) and the sha256 of the mkfs.ext4
/// images written into them; the MGT records the generator wrote.
/// </summary>
public class CarveRawAndNamesTests
{
    private static string Dir => Path.Combine(Repo.FixtureCache, "carve");

    private static JsonElement Facts => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "facts.json"))).RootElement;

    [RealFact("lvm", "sha256sum", Root = true, Fixture = "carve")]
    public void Contiguous_raw_vdi_is_recovered_byte_identical_and_a_fragmented_one_is_reported_unproven_with_its_superblock_extents()
    {
        var image = Path.Combine(Dir, "damaged.img");
        var before = Repo.Sha256File(image);
        var outDir = Directory.CreateTempSubdirectory("vrescue-carve-raw-").FullName;
        try
        {
            CarveResult result;
            CarveManifest manifest;
            using (var source = FileBlockSource.Open(image))
            {
                result = Carver.Carve([source]);
                manifest = CarveOutput.Write(result, [source], outDir);
            }

            var facts = Facts.GetProperty("rawVdis").EnumerateArray().ToList();
            Assert.Equal(facts.Count, result.RawVdis.Count);
            var rawPes = new HashSet<long>();
            foreach (var fact in facts)
            {
                var pes = fact.GetProperty("pes").EnumerateArray().Select(p => p.GetInt64()).ToList();
                rawPes.UnionWith(pes);
                var raw = result.RawVdis.Single(r => r.FsUuid == Guid.Parse(fact.GetProperty("fsUuid").GetString()!));
                var entry = manifest.RawVdis.Single(r => r.FsUuid == fact.GetProperty("fsUuid").GetString());
                Assert.Equal(fact.GetProperty("lvSizeBytes").GetInt64() / result.ExtentSizeBytes, raw.ExtentCount);
                Assert.All(raw.Extents.Where(e => e is not null), e => Assert.Equal(pes[(int)e!.LogicalExtent], e.Pe));   // never a wrong extent
                if (fact.GetProperty("contiguous").GetBoolean())
                {
                    Assert.True(raw.Recovered);
                    Assert.Equal(pes, raw.Extents.Select(e => e!.Pe));
                    Assert.Equal(fact.GetProperty("sha256").GetString(), entry.RawSha256);
                    Assert.True(entry.InCarvedVg);
                    // Proven only where a superblock copy sits (groups 0, 1, 3 of a 1 KiB-block ext4: LE 0, 2, 6).
                    Assert.Equal([0L, 2, 6], raw.Extents.Where(e => e!.Confidence >= 0.8).Select(e => e!.LogicalExtent));
                }
                else
                {
                    Assert.False(raw.Recovered);
                    Assert.Null(entry.RawFile);
                    Assert.Equal([0L, 2, 6], raw.Extents.Where(e => e is not null).Select(e => e!.LogicalExtent));
                    Assert.Equal(pes[6], Assert.Single(raw.Candidates[6]));
                    Assert.Contains(raw.Findings, f => f.Code == "CARVE_RAW_UNPROVEN" && f.Message.Contains("LE(s) 1,3-5,7-9", StringComparison.Ordinal));
                }
            }

            // No VHD extent was put on a raw VDI's PE.
            Assert.All(result.Vdis.SelectMany(v => v.Extents), e => Assert.DoesNotContain(e!.Pe, rawPes));
            Assert.Equal(before, Repo.Sha256File(image));
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }

    [RealFact("lvm", "sha256sum", Root = true, Fixture = "carve")]
    public void Surviving_mgt_names_the_carved_vdis_whose_vdi_uuid_is_known_and_lists_the_rest()
    {
        using var source = FileBlockSource.Open(Path.Combine(Dir, "damaged.img"));
        var result = Carver.Carve([source]);
        var records = Facts.GetProperty("mgt").EnumerateArray().ToList();

        // The base copy's VDI uuid comes from the snapshot leaf's parent name; its MGT record gives its name.
        var named = result.Vdis.Where(v => v.NameLabel is not null).ToList();
        var baseCopy = Assert.Single(named);
        var record = records.Single(r => Guid.Parse(r.GetProperty("uuid").GetString()!) == baseCopy.VdiUuid);
        Assert.Equal(record.GetProperty("nameLabel").GetString(), baseCopy.NameLabel);

        // Every other record's name is reported, none is guessed onto a carved VDI.
        var finding = Assert.Single(result.Findings, f => f.Code == "CARVE_MGT_NAMES");
        foreach (var r in records.Where(r => r.GetProperty("uuid").GetString() != record.GetProperty("uuid").GetString()))
        {
            Assert.Contains($"\"{r.GetProperty("nameLabel").GetString()}\"", finding.Message, StringComparison.Ordinal);
        }
    }
}
