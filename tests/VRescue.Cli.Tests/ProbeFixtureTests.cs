// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests;

/// <summary>
/// Probe on SR images built by real lvm2/qemu-img/sgdisk: every layer equals what the tools reported
/// (lvs/pvs/vgs JSON, sfdisk, qemu-img info, vhdiinfo) and the names the generator wrote into MGT.
/// </summary>
public class ProbeFixtureTests
{
    [RealFact(Fixture = "sr-lun")]
    public void Whole_lun_sr_layout_equals_lvm_tools() => AssertProbeMatchesTools(new SrFixture("sr-lun"));

    [RealFact(Fixture = "sr-gpt")]
    public void Gpt_partitioned_sr_layout_equals_lvm_tools() => AssertProbeMatchesTools(new SrFixture("sr-gpt"));

    [RealFact(Fixture = "sample")]
    public void Bundled_sample_layout_equals_lvm_tools() => AssertProbeMatchesTools(new SrFixture("sample"));

    [RealFact(Fixture = "sr-gpt")]
    public void Gpt_partitions_equal_sfdisk()
    {
        var fx = new SrFixture("sr-gpt");
        var disk = Cli.Run("probe", fx.ImagePath, "--json").Json.GetProperty("disks")[0];
        Assert.Equal("gpt", disk.GetProperty("partitionTable").GetString());
        Assert.True(disk.GetProperty("primaryValid").GetBoolean());
        Assert.True(disk.GetProperty("backupValid").GetBoolean());
        var sfdisk = fx.Load("partitions.json").GetProperty("partitiontable");
        var sectorBytes = sfdisk.GetProperty("sectorsize").GetInt64();
        var expected = sfdisk.GetProperty("partitions").EnumerateArray()
            .Select(p => (p.GetProperty("start").GetInt64() * sectorBytes, p.GetProperty("size").GetInt64() * sectorBytes)).ToList();
        var actual = disk.GetProperty("partitions").EnumerateArray()
            .Select(p => (p.GetProperty("startBytes").GetInt64(), p.GetProperty("sizeBytes").GetInt64())).ToList();
        Assert.Equal(expected, actual);
        var pvPartition = disk.GetProperty("partitions").EnumerateArray().Single(p => p.GetProperty("holdsPv").GetBoolean());
        Assert.Equal(fx.Sr.GetProperty("srOffsetBytes").GetInt64(), pvPartition.GetProperty("startBytes").GetInt64());
    }

    private static void AssertProbeMatchesTools(SrFixture fx)
    {
        var before = Repo.Sha256File(fx.ImagePath);
        var r = Cli.Run("probe", fx.ImagePath, "--json");
        Assert.True(r.ExitCode == ExitCodes.Ok, r.Stdout + r.Stderr);
        var json = r.Json;
        Assert.Equal("none", json.GetProperty("failureMode").GetString());
        var sr = Assert.Single(json.GetProperty("srs").EnumerateArray().ToList());

        var vg = Assert.Single(fx.LvmRows("vgs.json", "vg"));
        Assert.Equal(fx.Sr.GetProperty("srUuid").GetString(), sr.GetProperty("srUuid").GetString());
        Assert.Equal(vg.GetProperty("vg_name").GetString(), sr.GetProperty("vgName").GetString());
        Assert.Equal(vg.GetProperty("vg_uuid").GetString(), sr.GetProperty("vgUuid").GetString());
        Assert.Equal(SrFixture.LvmNumber(vg, "vg_seqno"), sr.GetProperty("seqno").GetInt64());
        Assert.Equal(SrFixture.LvmBytes(vg, "vg_extent_size"), sr.GetProperty("extentSizeBytes").GetInt64());
        Assert.Equal(fx.Sr.GetProperty("srNameLabel").GetString(), sr.GetProperty("nameLabel").GetString());

        var pv = Assert.Single(fx.LvmRows("pvs.json", "pv"));
        var probedPv = Assert.Single(sr.GetProperty("pvs").EnumerateArray().ToList());
        Assert.Equal(pv.GetProperty("pv_uuid").GetString(), probedPv.GetProperty("pvUuid").GetString());
        Assert.Equal(SrFixture.LvmBytes(pv, "pe_start"), probedPv.GetProperty("peStartBytes").GetInt64());
        Assert.Equal(SrFixture.LvmNumber(pv, "pv_pe_count"), probedPv.GetProperty("peCount").GetInt64());
        Assert.Equal(fx.Sr.GetProperty("srOffsetBytes").GetInt64(), probedPv.GetProperty("offsetBytes").GetInt64());

        // Every LV and every segment, as lvs --segments reports them.
        var segs = fx.LvmRows("lvs.json", "seg");
        var lvNames = segs.Select(s => s.GetProperty("lv_name").GetString()!).Distinct().Order().ToList();
        var probedLvs = sr.GetProperty("lvs").EnumerateArray().ToDictionary(l => l.GetProperty("lvName").GetString()!);
        Assert.Equal(lvNames, probedLvs.Keys.Order().ToList());
        foreach (var name in lvNames)
        {
            var rows = segs.Where(s => s.GetProperty("lv_name").GetString() == name).ToList();
            Assert.Equal(SrFixture.LvmBytes(rows[0], "lv_size"), probedLvs[name].GetProperty("sizeBytes").GetInt64());
            Assert.Equal(rows.Count, probedLvs[name].GetProperty("segmentCount").GetInt32());
        }

        var vdis = sr.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!);
        foreach (var expected in fx.Sr.GetProperty("vdis").EnumerateArray())
        {
            var uuid = expected.GetProperty("uuid").GetString()!;
            var vdi = vdis[uuid];
            var lvName = expected.GetProperty("lvName").GetString()!;
            Assert.Equal(lvName, vdi.GetProperty("lvName").GetString());
            Assert.Equal(expected.GetProperty("kind").GetString(), vdi.GetProperty("vdiType").GetString());
            Assert.Equal(expected.GetProperty("nameLabel").GetString(), vdi.GetProperty("nameLabel").GetString());
            Assert.Equal(expected.GetProperty("nameDescription").GetString(), vdi.GetProperty("nameDescription").GetString());

            var expectedSegments = segs.Where(s => s.GetProperty("lv_name").GetString() == lvName)
                .Select(s => (SrFixture.LvmNumber(s, "seg_start_pe"), SrFixture.LvmNumber(s, "seg_size_pe"), PeRangeStart(s)))
                .OrderBy(s => s.Item1).ToList();
            var actualSegments = vdi.GetProperty("segments").EnumerateArray()
                .Select(s => (s.GetProperty("startExtent").GetInt64(), s.GetProperty("extentCount").GetInt64(), s.GetProperty("pvStartExtent").GetInt64()))
                .OrderBy(s => s.Item1).ToList();
            Assert.Equal(expectedSegments, actualSegments);
            Assert.All(vdi.GetProperty("segments").EnumerateArray(), s => Assert.Equal(pv.GetProperty("pv_uuid").GetString(), s.GetProperty("pvUuid").GetString()));

            if (expected.GetProperty("kind").GetString() == "vhd")
            {
                var qemu = expected.GetProperty("qemuImgInfo");
                Assert.Equal(qemu.GetProperty("virtual-size").GetInt64(), vdi.GetProperty("virtualSizeBytes").GetInt64());
                Assert.Equal(fx.VhdiInfo(uuid, "Identifier"), vdi.GetProperty("footerUuid").GetString());
                Assert.Equal(fx.VhdiInfo(uuid, "Disk type").ToLowerInvariant(), vdi.GetProperty("vhdDiskType").GetString());
                Assert.Contains($"({vdi.GetProperty("virtualSizeBytes").GetInt64()} bytes)", fx.VhdiInfo(uuid, "Media size"));
                Assert.True(vdi.GetProperty("footerValid").GetBoolean());
                Assert.True(vdi.GetProperty("headerValid").GetBoolean());
                Assert.False(vdi.GetProperty("hidden").GetBoolean());
            }
            else
            {
                Assert.Equal(expected.GetProperty("lvSizeBytes").GetInt64(), vdi.GetProperty("virtualSizeBytes").GetInt64());
            }
        }

        Assert.Equal(before, Repo.Sha256File(fx.ImagePath));
    }

    /// <summary>"/dev/loop0:5-6" -> 5.</summary>
    private static long PeRangeStart(JsonElement seg)
    {
        var range = seg.GetProperty("seg_pe_ranges").GetString()!;
        return long.Parse(range[(range.LastIndexOf(':') + 1)..].Split('-')[0]);
    }
}
