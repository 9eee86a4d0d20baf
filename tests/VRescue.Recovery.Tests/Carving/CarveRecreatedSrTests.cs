// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.Recovery.Carving;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Carving recreated.img of tests/fixtures/carve: the carve fixture's SR with a new SR created over it by real lvm2 (first
/// 10 MiB zeroed, new PV/VG/MGT, two new VHD VDIs, one of them inflated over two data extents of the old VDI B).
/// Truth: the new VG's `lvs --segments` and each old VDI's guest sha256 with the overwritten extents read as zeros,
/// both computed by the generator from lvm2's reports and its own VHD reader.
/// </summary>
public class CarveRecreatedSrTests
{
    private static string Dir => Path.Combine(Repo.FixtureCache, "carve");

    private static JsonElement Facts => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "recreated-facts.json"))).RootElement;

    /// <summary>Every PE the new VG's LVs hold, from lvm2's report.</summary>
    private static HashSet<long> NewVgPes()
    {
        var pes = new HashSet<long>();
        foreach (var seg in JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "recreated-lvs.json"))).RootElement.EnumerateArray())
        {
            var range = seg.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-').Select(long.Parse).ToArray();
            for (var pe = range[0]; pe <= range[1]; pe++)
            {
                pes.Add(pe);
            }
        }

        return pes;
    }

    [RealFact("lvm", "sha256sum", Root = true, Fixture = "carve")]
    public void Carve_over_a_recreated_sr_recovers_the_old_vdis_and_leaves_the_new_vg_alone()
    {
        var image = Path.Combine(Dir, "recreated.img");
        var before = Repo.Sha256File(image);
        Assert.Equal(File.ReadAllText(Path.Combine(Dir, "recreated.img.sha256")).Trim(), before);
        var facts = Facts;
        var outDir = Directory.CreateTempSubdirectory("vrescue-carve-re-").FullName;
        try
        {
            CarveResult result;
            CarveManifest manifest;
            using (var source = FileBlockSource.Open(image))
            {
                result = Carver.Carve([source]);
                manifest = CarveOutput.Write(result, [source], outDir);
            }

            Assert.Equal(before, Repo.Sha256File(image));

            // The new VG is recognised from its metadata; its LVs' PEs are exactly lvm2's.
            var vg = Assert.Single(result.CurrentVgs);
            Assert.Equal(facts.GetProperty("vgName").GetString(), vg.VgName);
            var newPes = NewVgPes();
            Assert.Equal(newPes.Order(), vg.Pes.Select(p => p.Pe!.Value).Order());

            // New VDIs are not carved as old ones, and no old VDI got one of their PEs.
            var newFooters = facts.GetProperty("newVdis").EnumerateArray().Select(v => Guid.Parse(v.GetProperty("footerUuid").GetString()!)).ToList();
            Assert.DoesNotContain(result.Vdis, v => newFooters.Contains(v.Footer.Uuid));
            Assert.All(result.Vdis.SelectMany(v => v.Extents), e => Assert.True(e is null || !newPes.Contains(e.Pe), $"PE {e?.Pe} of the new VG given to an old VDI"));
            Assert.Contains(result.Findings, f => f.Code == "CARVE_CURRENT_VG_HEADS_SKIPPED");

            // The old SR's identity survives in the differencing leaf's parent name; carved.vg does not reuse the new VG's name.
            Assert.Equal(Guid.Parse(facts.GetProperty("oldSrUuid").GetString()!), result.SrUuid);
            Assert.NotEqual(vg.VgName, manifest.VgName);
            Assert.Null(result.Mgt);                                             // the old MGT at PE 0 is the new SR's MGT now

            var old = facts.GetProperty("oldVdis").EnumerateArray().ToList();
            Assert.Equal(old.Count, manifest.Vdis.Count);
            foreach (var fact in old)
            {
                var v = manifest.Vdis.Single(x => x.FooterUuid == fact.GetProperty("footerUuid").GetString());
                var lost = fact.GetProperty("overwrittenLes").EnumerateArray().Select(e => e.GetInt64()).ToList();
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.RawSha256);
                if (lost.Count == 0)
                {
                    Assert.False(v.Partial, v.LvName);
                    Assert.Equal(fact.GetProperty("originalGuestSha256").GetString(), v.RawSha256);   // byte-identical to the source VDI
                    continue;
                }

                // The old VDI B: LE 4-5 lie under the new VDI F. Partial, with exactly the guest blocks stored there.
                Assert.True(v.Partial);
                Assert.False(v.InCarvedVg);
                var expected = fact.GetProperty("unreadableGuestRanges").EnumerateArray().Select(r => (r[0].GetInt64(), r[1].GetInt64())).ToList();
                Assert.Equal(expected, v.UnreadableRanges.Select(r => (r.OffsetBytes, r.LengthBytes)));
                Assert.All(lost, le => Assert.False(v.Extents[(int)le].Carved));
                var overwritten = Assert.Single(v.Findings, f => f.Code == "CARVE_EXTENTS_OVERWRITTEN");
                Assert.Contains(facts.GetProperty("newVdis")[0].GetProperty("lvName").GetString()!, overwritten.Message);
            }
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}
