// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.Recovery.Carving;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Carving the fixture of tests/fixtures/carve (real lvm2, interleaved XenServer-layout VHDs, snapshot chain,
/// deleted VDI, metadata area zeroed). Truth comes from lvm2's own `lvs --segments` taken before the damage.
/// </summary>
public class CarveFixtureTests
{
    private static string Dir => Path.Combine(Repo.FixtureCache, "carve");

    private static JsonElement Facts => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "facts.json"))).RootElement;

    /// <summary>lv name -> (LE -> PE) from lvs.json.</summary>
    private static Dictionary<string, Dictionary<long, long>> Truth(string lvsJson)
    {
        var truth = new Dictionary<string, Dictionary<long, long>>();
        foreach (var seg in JsonDocument.Parse(lvsJson).RootElement.EnumerateArray())
        {
            var lv = seg.GetProperty("lv_name").GetString()!;
            var range = seg.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-').Select(long.Parse).ToArray();
            var start = long.Parse(seg.GetProperty("seg_start_pe").GetString()!);
            for (long i = 0; i <= range[1] - range[0]; i++)
            {
                (truth.TryGetValue(lv, out var m) ? m : truth[lv] = [])[start + i] = range[0] + i;
            }
        }

        return truth;
    }

    [RealFact("lvm", "sha256sum", Root = true, Fixture = "carve")]
    public void Carve_finds_every_vhd_and_never_claims_a_wrong_extent_with_high_confidence()
    {
        var image = Path.Combine(Dir, "damaged.img");
        using var source = FileBlockSource.Open(image);
        var result = Carver.Carve([source]);

        var truth = Truth(File.ReadAllText(Path.Combine(Dir, "lvs.json")));
        var facts = Facts;
        Assert.Equal(facts.GetProperty("peStartBytes").GetInt64(), result.PeStartBytes);
        Assert.Equal(Guid.Parse(facts.GetProperty("srUuid").GetString()!), result.SrUuid);
        Assert.Equal((0, 0L), result.Mgt);
        var expected = facts.GetProperty("vdis").EnumerateArray().ToList();
        Assert.Equal(expected.Count, result.Vdis.Count);                      // the deleted VDI's head was wiped by lvcreate
        foreach (var fact in expected)
        {
            var v = result.Vdis.Single(x => x.Footer.Uuid == Guid.Parse(fact.GetProperty("footerUuid").GetString()!));
            var lv = fact.GetProperty("lvName").GetString()!;
            Assert.Equal(fact.GetProperty("lvSizeBytes").GetInt64() / result.ExtentSizeBytes, v.ExtentCount);
            Assert.Equal(truth[lv][0], v.Extents[0]!.Pe);
            Assert.Equal(truth[lv][1], v.Extents[1]!.Pe);
            Assert.Equal(truth[lv][v.ExtentCount - 1], v.Extents[v.ExtentCount - 1]!.Pe);
            foreach (var e in v.Extents.Where(e => e is not null && e.Confidence >= 0.8))
            {
                Assert.True(truth[lv][e!.LogicalExtent] == e.Pe, $"{lv} LE {e.LogicalExtent}: PE {e.Pe} at confidence {e.Confidence} but lvm2 says {truth[lv][e.LogicalExtent]}: {string.Join("; ", e.Evidence)}");
            }

            if (fact.GetProperty("parentLvName").GetString() is { } parent)
            {
                Assert.Equal(parent, v.ParentLvName);                          // recovered from the differencing header's parent name
            }
        }

        // Wrong extents are never silent: each is ambiguous or below 0.8.
        var wrong = result.Vdis.SelectMany(v => v.Extents.Where(e => e is not null && truth[expected.Single(f => f.GetProperty("footerUuid").GetString() == v.Footer.Uuid.ToString()).GetProperty("lvName").GetString()!][e!.LogicalExtent] != e.Pe)).ToList();
        Assert.All(wrong, e => Assert.True(e!.Ambiguous || e.Confidence < 0.8));
        Assert.Equal(File.ReadAllText(Path.Combine(Dir, "damaged.img.sha256")).Trim(), Repo.Sha256File(image));
    }

    private static string LvOf(CarvedVdi v) => Facts.GetProperty("vdis").EnumerateArray()
        .Single(f => f.GetProperty("footerUuid").GetString() == v.Footer.Uuid.ToString()).GetProperty("lvName").GetString()!;

    [RealFact("lvm", "sha256sum", Root = true, Fixture = "carve")]
    public void Carve_places_every_extent_where_lvm2_had_it_and_reports_the_one_indistinguishable_pair_as_ambiguous()
    {
        using var source = FileBlockSource.Open(Path.Combine(Dir, "damaged.img"));
        var result = Carver.Carve([source]);
        var truth = Truth(File.ReadAllText(Path.Combine(Dir, "lvs.json")));

        foreach (var v in result.Vdis)
        {
            var lv = LvOf(v);
            Assert.Equal(truth[lv].Count, v.ExtentCount);
            Assert.All(v.Extents, e => Assert.Equal(truth[lv][e!.LogicalExtent], e.Pe));
            Assert.True(v.IsComplete, lv);
        }

        // The base copy's LE 4 and VDI B's LE 4 carry the same bitmap pattern; the ext4 primary superblock of the base's
        // guest sits exactly where the base's BAT puts guest offset 1024.
        var baseLe4 = result.Vdis.Single(v => LvOf(v) == "VHD-ab000006-0000-4000-8000-000000000006").Extents[4]!;
        Assert.Contains(baseLe4.Evidence, e => e.Contains("ext4 superblock of group 0", StringComparison.Ordinal));
        Assert.True(baseLe4.Confidence >= 0.8);

        // B's and C's LE 2 (PEs 10 and 11) look alike by VHD layout; the partially written block's sector bitmap in PE 10
        // writes where C's file system has free blocks, so PE 10 is B's and not ambiguous any more.
        var b = result.Vdis.Single(v => LvOf(v) == "VHD-bb000002-0000-4000-8000-000000000002");
        var c = result.Vdis.Single(v => LvOf(v) == "VHD-cc000003-0000-4000-8000-000000000003");
        Assert.False(b.Extents[2]!.Ambiguous);
        Assert.False(c.Extents[2]!.Ambiguous);
        Assert.Contains(b.Extents[2]!.Evidence, e => e.Contains("guest ext4", StringComparison.Ordinal));

        // B's LE 3 and E's LE 3 are two fully written blocks of random file data each, with identical VHD and ext4
        // structure: nothing on disk tells them apart. Both are reported, each with the other's PE, below 0.8; the
        // placement follows the allocator's proximity rule only. (Extents holding no VHD data are placed by the
        // allocator rule alone and may be ambiguous too; they do not change any guest byte.)
        var e = result.Vdis.Single(v => LvOf(v) == "VHD-ee000005-0000-4000-8000-000000000005");
        var ambiguous = result.Vdis.SelectMany(v => v.Extents.Where(x => x!.Ambiguous && v.RequiredExtents.Contains(x.LogicalExtent))
            .Select(x => (Lv: LvOf(v), Extent: x!))).ToList();
        Assert.All(result.Vdis.SelectMany(v => v.Extents), x => Assert.True(!x!.Ambiguous || x.Confidence < 0.8));
        Assert.Equal(["VHD-bb000002-0000-4000-8000-000000000002:3", "VHD-ee000005-0000-4000-8000-000000000005:3"],
            ambiguous.Select(a => $"{a.Lv}:{a.Extent.LogicalExtent}").Order());
        foreach (var (_, x) in ambiguous)
        {
            Assert.True(x.Confidence < 0.8);
            Assert.Equal([14L, 39L], x.AlternativePes!.Append(x.Pe).Order());
        }

        Assert.Contains(b.Findings, f => f.Code == "CARVE_EXTENT_AMBIGUOUS");
        Assert.Contains(e.Findings, f => f.Code == "CARVE_EXTENT_AMBIGUOUS");
    }

    [RealFact("lvm", "losetup", "sha256sum", Root = true, Fixture = "carve")]
    public void Carved_vg_is_accepted_by_vgcfgrestore_on_a_copy_with_every_complete_lv_at_its_original_size()
    {
        var image = Path.Combine(Dir, "damaged.img");
        var before = Repo.Sha256File(image);
        var outDir = Directory.CreateTempSubdirectory("vrescue-carve-").FullName;
        try
        {
            CarveManifest manifest;
            using (var source = FileBlockSource.Open(image))
            {
                var result = Carver.Carve([source]);
                manifest = CarveOutput.Write(result, [source], outDir, exportRaw: true);
            }

            Assert.Equal(before, Repo.Sha256File(image));
            var vgFile = Path.Combine(outDir, "carved.vg");
            var facts = Facts;
            using var lvm = new LoopLvm(new FileInfo(image).Length);
            using (var copy = new FileStream(lvm.ImagePath, FileMode.Open, FileAccess.Write))
            using (var src = File.OpenRead(image))
            {
                src.CopyTo(copy);
            }

            var pvId = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(vgFile), "pv0 \\{\\s*id = \"([^\"]+)\"").Groups[1].Value;
            lvm.Lvm($"pvcreate -ff -y --uuid {pvId} --restorefile {vgFile} {lvm.Device}");
            lvm.Lvm($"vgcfgrestore -f {vgFile} {manifest.VgName}");
            var restored = lvm.Report("lvs --segments", "seg", "lv_name,lv_size,seg_start_pe,seg_size_pe,seg_pe_ranges");
            var sizes = restored.GroupBy(r => r.GetProperty("lv_name").GetString()!).ToDictionary(g => g.Key, g => long.Parse(g.First().GetProperty("lv_size").GetString()!));
            Assert.Equal(4L << 20, sizes["MGT"]);
            foreach (var v in manifest.Vdis.Where(v => v.InCarvedVg))
            {
                var fact = facts.GetProperty("vdis").EnumerateArray().Single(f => f.GetProperty("footerUuid").GetString() == v.FooterUuid);
                Assert.Equal(fact.GetProperty("lvSizeBytes").GetInt64(), sizes[v.LvName]);
            }

            // Restored segments are exactly carved.vg's extent map (lvm2 read back what we wrote) and equal the original
            // lvs segments, and every VDI's guest view (chains resolved) has its source's sha256.
            var truth = Truth(File.ReadAllText(Path.Combine(Dir, "lvs.json")));
            Assert.Equal(facts.GetProperty("vdis").GetArrayLength(), manifest.Vdis.Count(v => v.InCarvedVg));
            foreach (var v in manifest.Vdis.Where(v => v.InCarvedVg))
            {
                var back = Truth(JsonSerializer.Serialize(restored))[v.LvName];
                Assert.Equal(v.Extents.ToDictionary(e => e.Le, e => e.Pe), back);
                var fact = facts.GetProperty("vdis").EnumerateArray().Single(f => f.GetProperty("footerUuid").GetString() == v.FooterUuid);
                Assert.Equal(truth[fact.GetProperty("lvName").GetString()!], back);
                Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.RawSha256);
                Assert.False(v.Partial);
            }
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
    }
}
