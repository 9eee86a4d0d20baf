// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests;

/// <summary>
/// Damage recipes applied to copies of real-tool fixtures: probe still reports every layer it can read, names
/// what is missing with stable codes and offsets, maps it to a failure mode, and never writes the source.
/// </summary>
public sealed class ProbeDamageTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-damage-").FullName;

    private string Copy(SrFixture fx)
    {
        var path = Path.Combine(_dir, fx.Name + ".img");
        Repo.Run("cp", $"--sparse=always {fx.ImagePath} {path}");
        return path;
    }

    private static void Overwrite(string path, long offset, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }

    private static (Cli.Result Result, JsonElement Json) Probe(string path)
    {
        var before = Repo.Sha256File(path);
        var r = Cli.Run("probe", path, "--json");
        Assert.Equal(before, Repo.Sha256File(path));
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        return (r, r.Json);
    }

    private static List<string> Codes(JsonElement json) =>
        json.GetProperty("findings").EnumerateArray().Select(f => f.GetProperty("code").GetString()!).ToList();

    private static JsonElement Finding(JsonElement json, string code) =>
        json.GetProperty("findings").EnumerateArray().First(f => f.GetProperty("code").GetString() == code);

    [RealFact(Fixture = "sr-lun")]
    public void Truncated_image_reports_the_sr_and_the_lvs_that_run_past_the_end()
    {
        var fx = new SrFixture("sr-lun");
        var path = Copy(fx);
        Repo.Run("truncate", $"-s {40 * MiB} {path}");
        var (r, json) = Probe(path);
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        Assert.Equal("truncated-image", json.GetProperty("failureMode").GetString());
        Assert.Contains("LV_EXTENTS_BEYOND_SOURCE", Codes(json));
        var sr = json.GetProperty("srs")[0];
        Assert.Equal(fx.Sr.GetProperty("srUuid").GetString(), sr.GetProperty("srUuid").GetString());
        Assert.Equal(fx.Sr.GetProperty("vdis").GetArrayLength(), sr.GetProperty("vdis").GetArrayLength());
        Assert.Contains("truncated", json.GetProperty("diagnosis").GetString());
    }

    [RealFact(Fixture = "sr-gpt")]
    public void Zeroed_primary_gpt_header_is_reported_and_the_sr_is_read_through_the_backup()
    {
        var fx = new SrFixture("sr-gpt");
        var path = Copy(fx);
        Overwrite(path, 512, new byte[512]);
        var (r, json) = Probe(path);
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        Assert.Equal("partition-table-damaged", json.GetProperty("failureMode").GetString());
        var disk = json.GetProperty("disks")[0];
        Assert.False(disk.GetProperty("primaryValid").GetBoolean());
        Assert.True(disk.GetProperty("backupValid").GetBoolean());
        Assert.Equal(fx.Sr.GetProperty("srUuid").GetString(), json.GetProperty("srs")[0].GetProperty("srUuid").GetString());
        var f = Finding(json, "GPT_PRIMARY_INVALID");
        Assert.StartsWith("vrescue partitions scan", f.GetProperty("nextStep").GetString());
    }

    [RealFact(Fixture = "sr-gpt")]
    public void Wiped_partition_table_still_finds_the_pv_at_its_old_start()
    {
        var fx = new SrFixture("sr-gpt");
        var path = Copy(fx);
        Overwrite(path, 0, new byte[34 * 512]);
        var length = new FileInfo(path).Length;
        Overwrite(path, length - (33 * 512), new byte[33 * 512]);
        var (r, json) = Probe(path);
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        Assert.Equal("none", json.GetProperty("disks")[0].GetProperty("partitionTable").GetString());
        var f = Finding(json, "PV_OUTSIDE_PARTITION_TABLE");
        Assert.Equal(fx.Sr.GetProperty("srOffsetBytes").GetInt64(), f.GetProperty("offsetBytes").GetInt64());
        Assert.Equal("partition-table-damaged", json.GetProperty("failureMode").GetString());
        Assert.Equal(fx.Sr.GetProperty("vdis").GetArrayLength(), json.GetProperty("srs")[0].GetProperty("vdis").GetArrayLength());
    }

    [RealFact(Fixture = "sr-lun")]
    public void Zeroed_lvm_label_is_lvm_metadata_damage_and_the_vg_is_still_read_from_the_metadata_area()
    {
        var fx = new SrFixture("sr-lun");
        var path = Copy(fx);
        Overwrite(path, 512, new byte[512]);
        var (r, json) = Probe(path);
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        Assert.Equal("lvm-metadata-damaged", json.GetProperty("failureMode").GetString());
        var f = Finding(json, "LVM_NO_LABEL");
        Assert.StartsWith("vrescue lvm history", f.GetProperty("nextStep").GetString());
        Assert.Equal(fx.Sr.GetProperty("vgName").GetString(), json.GetProperty("srs")[0].GetProperty("vgName").GetString());
    }

    [RealFact(Fixture = "sr-lun")]
    public void Flipped_byte_in_committed_metadata_text_is_a_crc_finding_at_that_offset()
    {
        var fx = new SrFixture("sr-lun");
        var path = Copy(fx);
        // Where the committed text lies, from pvck --dump headers (the tool, not our reader).
        var pvck = File.ReadAllLines(Path.Combine(fx.Directory, "pvck.txt"));
        var line = pvck.First(l => l.Contains("mda_header_1.raw_locn[0].offset", StringComparison.Ordinal));
        var textOffset = 4096 + long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Last());
        var flipAt = textOffset + 40;
        var b = File.ReadAllBytes(path).AsSpan((int)flipAt, 1).ToArray();
        b[0] ^= 0x20;
        Overwrite(path, flipAt, b);
        var (r, json) = Probe(path);
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        var f = Finding(json, "LVM_METADATA_CRC");
        Assert.Equal(textOffset, f.GetProperty("offsetBytes").GetInt64());
    }

    [RealFact(Fixture = "sr-lun")]
    public void Killed_vhd_footer_is_read_from_the_copy_and_reported()
    {
        var fx = new SrFixture("sr-lun");
        var path = Copy(fx);
        var vdi = fx.Sr.GetProperty("vdis").EnumerateArray().First(v => v.GetProperty("kind").GetString() == "vhd");
        var lvName = vdi.GetProperty("lvName").GetString()!;
        // LV end from lvs --segments (last segment's last PE) and pvs pe_start: the tools' layout, not ours.
        var last = fx.LvmRows("lvs.json", "seg").Where(s => s.GetProperty("lv_name").GetString() == lvName)
            .MaxBy(s => SrFixture.LvmNumber(s, "seg_start_pe"));
        var range = last!.GetProperty("seg_pe_ranges").GetString()!;
        var lastPe = long.Parse(range[(range.LastIndexOf(':') + 1)..].Split('-')[1]);
        var peStart = SrFixture.LvmBytes(Assert.Single(fx.LvmRows("pvs.json", "pv")), "pe_start");
        var footerAt = peStart + ((lastPe + 1) * 4 * MiB) - 512;
        Overwrite(path, footerAt, Enumerable.Repeat((byte)0xC7, 512).ToArray());

        var (r, json) = Probe(path);
        Assert.NotEqual(ExitCodes.Ok, r.ExitCode);
        var probed = json.GetProperty("srs")[0].GetProperty("vdis").EnumerateArray().Single(v => v.GetProperty("lvName").GetString() == lvName);
        Assert.Equal("copy", probed.GetProperty("footerSource").GetString());
        Assert.Equal(vdi.GetProperty("qemuImgInfo").GetProperty("virtual-size").GetInt64(), probed.GetProperty("virtualSizeBytes").GetInt64());
        var f = Finding(json, "VHD_FOOTER_KILLED");
        Assert.Equal(footerAt, f.GetProperty("offsetBytes").GetInt64());
        Assert.Contains(vdi.GetProperty("uuid").GetString()!, f.GetProperty("nextStep").GetString());
    }

    [RealFact(Fixture = "sr-lun")]
    public void Wiped_mgt_volume_leaves_names_unknown_and_says_so()
    {
        var fx = new SrFixture("sr-lun");
        var path = Copy(fx);
        var mgt = fx.LvmRows("lvs.json", "seg").Single(s => s.GetProperty("lv_name").GetString() == "MGT");
        var range = mgt.GetProperty("seg_pe_ranges").GetString()!;
        var pe = long.Parse(range[(range.LastIndexOf(':') + 1)..].Split('-')[0]);
        var peStart = SrFixture.LvmBytes(Assert.Single(fx.LvmRows("pvs.json", "pv")), "pe_start");
        Overwrite(path, peStart + (pe * 4 * MiB), new byte[4096]);
        var (_, json) = Probe(path);
        Assert.Contains("XEN_MGT_NO_MAGIC", Codes(json));
        Assert.All(json.GetProperty("srs")[0].GetProperty("vdis").EnumerateArray(), v => Assert.Equal(JsonValueKind.Null, v.GetProperty("nameLabel").ValueKind));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
