// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Vhd;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>Real `vrescue vhd` command strings against the vhd-util sample and damaged copies.</summary>
public sealed class VhdCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Copy(string name)
    {
        var path = Path.Combine(_dir, name);
        File.Copy(Samples.VhdUtilPath("dynamic.vhd"), path, overwrite: true);
        return path;
    }

    private static void Poke(string path, long offset, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        f.Write(bytes);
    }

    [Fact]
    public void Check_of_the_sample_is_clean_exit_0()
    {
        var r = Cli.Run("vhd", "check", Samples.VhdUtilPath("dynamic.vhd"), "--json");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("clean", r.Json.GetProperty("verdict").GetString());
        Assert.Equal(33554432, r.Json.GetProperty("virtualSizeBytes").GetInt64());
    }

    [Fact]
    public void Check_of_a_killed_footer_is_repairable_exit_1_with_the_offset()
    {
        var path = Copy("killed.vhd");
        var length = new FileInfo(path).Length;
        Poke(path, length - 512, Enumerable.Repeat((byte)0xC7, 512).ToArray());
        var r = Cli.Run("vhd", "check", path, "--json");
        Assert.Equal(1, r.ExitCode);
        var killed = r.Json.GetProperty("findings").EnumerateArray().Single(f => f.GetProperty("code").GetString() == "VHD_FOOTER_KILLED");
        Assert.Equal(length - 512, killed.GetProperty("offsetBytes").GetInt64());
        Assert.Equal("repairable", r.Json.GetProperty("verdict").GetString());
    }

    [Fact]
    public void Check_with_two_lost_entries_is_data_loss_exit_2_and_repair_writes_the_bad_map()
    {
        var path = Copy("lost.vhd");
        Poke(path, 1536, new byte[4]);
        Poke(path, 1536 + 12, new byte[4]);
        Assert.Equal(2, Cli.Run("vhd", "check", path).ExitCode);

        var output = Path.Combine(_dir, "out.raw");
        var r = Cli.Run("vhd", "repair", path, "--out", output, "--format", "raw", "--json");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal(33554432, new FileInfo(output).Length);
        var map = File.ReadAllLines(output + ".badmap").Where(l => !l.StartsWith('#')).Skip(1).ToArray();
        Assert.Equal(["0x00000000  0x00200000  -", "0x00200000  0x00400000  +", "0x00600000  0x00200000  -", "0x00800000  0x01800000  +"], map);
    }

    [Fact]
    public void Repair_refuses_the_input_as_output_exit_64_and_leaves_it_untouched()
    {
        var path = Copy("evidence.vhd");
        var before = Repo.Sha256File(path);
        var r = Cli.Run("vhd", "repair", path, "--out", path);
        Assert.Equal(64, r.ExitCode);
        Assert.Contains("evidence is never written", r.Stderr);
        Assert.Equal(before, Repo.Sha256File(path));
    }

    [Fact]
    public void Human_check_lists_findings_repairs_and_guest()
    {
        var path = Copy("nohdr.vhd");
        Poke(path, 512, new byte[1024]);
        var r = Cli.Run("vhd", "check", path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("VHD_HEADER_REBUILT @0x200", r.Stdout);
        Assert.Contains("header: rebuilt around the BAT found at 0x600", r.Stdout);
        Assert.Contains("guest: partition table none", r.Stdout);
    }

    [Fact]
    public void Self_parented_differencing_vhd_is_a_finding_not_a_loop()
    {
        var path = Copy("self.vhd");
        var uuid = Guid.Parse("d73049fb-3369-4ade-8d25-d3a3dce323ab");
        var bytes = File.ReadAllBytes(path);
        var footer = VhdFooter.Decode(bytes.AsSpan(0, 512)) with { DiskType = VhdDiskType.Differencing };
        var text = Encoding.UTF8.GetBytes("file://./self.vhd");
        var header = VhdDynamicHeader.Decode(bytes.AsSpan(512, 1024)) with
        {
            ParentUuid = uuid,
            ParentUnicodeName = "self.vhd",
            ParentLocators = [new VhdParentLocator(VhdParentLocator.CodeMacX, 512, (uint)text.Length, 0, 0x420800), .. Enumerable.Repeat(new VhdParentLocator(0, 0, 0, 0, 0), 7)],
        };
        footer.Encode(bytes);
        footer.Encode(bytes.AsSpan(bytes.Length - 512));
        header.Encode(bytes.AsSpan(512));
        text.CopyTo(bytes, 0x420800);
        File.WriteAllBytes(path, bytes);
        Assert.Equal(uuid, footer.Uuid);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(0x420800 + 512)));

        var r = Cli.Run("vhd", "check", path, "--json");
        Assert.Contains(r.Json.GetProperty("findings").EnumerateArray(), f => f.GetProperty("code").GetString() == "VHD_CHAIN_CYCLE");
        Assert.NotEqual(0, r.ExitCode);
    }
}
