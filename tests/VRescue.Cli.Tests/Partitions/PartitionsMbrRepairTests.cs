// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Partitions;

/// <summary>
/// An older XenServer-style MBR disk made here with sfdisk, mkfs.ext4 and lvm (ext root in partition 1, the SR PV in
/// partition 2 up to the last sector, as fdisk lays out a DOS disk): sector 0 wiped, then found and rebuilt as MBR.
/// </summary>
public sealed class PartitionsMbrRepairTests : IDisposable
{
    private const long MiB = 1 << 20;
    private const long PvStartSector = 34816;
    private const string VgName = "VG_XenStorage-0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-partmbr-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact("sfdisk", "mkfs.ext4", "lvm", "losetup", Root = true)]
    public void Wiped_mbr_is_rebuilt_as_mbr_with_the_pv_where_it_was()
    {
        var image = Path.Combine(_dir, "mbr.img");
        Repo.Run("truncate", $"-s {96 * MiB} \"{image}\"");
        Repo.Run("sh", $"-c \"printf '2048,32768,83\\n{PvStartSector},,8e\\n' | sfdisk --quiet --no-reread --no-tell-kernel --label dos '{image}'\"");
        var original = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{image}\"")).RootElement.GetProperty("partitiontable");
        var pvSize = original.GetProperty("partitions")[1].GetProperty("size").GetInt64() * 512;
        Repo.Run("mkfs.ext4", $"-q -F -L root -E offset={MiB} \"{image}\" 16M");
        using (var loop = new LoopLvm(image, PvStartSector * 512, pvSize))
        {
            loop.Lvm($"vgcreate -q --metadatasize 10M {VgName} {loop.Device}");
            loop.Lvm($"lvcreate -an -Zn -y -q -n MGT -L 4M {VgName}");
        }

        Repo.Run("dd", $"if=/dev/zero of=\"{image}\" bs=512 count=1 conv=notrunc status=none");
        var hash = Repo.Sha256File(image);

        var scan = Cli.Run("partitions", "scan", image, "--json");
        Assert.Equal(ExitCodes.Damaged, scan.ExitCode);
        Assert.Equal("none", scan.Json.GetProperty("table").GetString());
        Assert.Equal("mbr", scan.Json.GetProperty("proposedTable").GetString());
        var proposed = scan.Json.GetProperty("proposed").EnumerateArray().ToList();
        Assert.Equal([MiB, PvStartSector * 512], proposed.Select(p => p.GetProperty("startBytes").GetInt64()));
        Assert.Equal(["0x83", "0x8e"], proposed.Select(p => p.GetProperty("mbrType").GetString()));

        var repaired = Path.Combine(_dir, "repaired.img");
        var repair = Cli.Run("partitions", "repair", image, "--into", repaired);
        Assert.True(repair.ExitCode == ExitCodes.Ok, repair.Stderr);
        Assert.Equal(hash, Repo.Sha256File(image));
        Assert.Equal([0L], PartitionsRepairFixtureTests.DifferingSectors(image, repaired));

        var table = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{repaired}\"")).RootElement.GetProperty("partitiontable");
        Assert.Equal("dos", table.GetProperty("label").GetString());
        var parts = table.GetProperty("partitions").EnumerateArray().ToList();
        Assert.Equal(original.GetProperty("partitions").EnumerateArray().Select(p => (p.GetProperty("start").GetInt64(), p.GetProperty("type").GetString())),
            parts.Select(p => (p.GetProperty("start").GetInt64(), p.GetProperty("type").GetString())));
        Assert.Equal(pvSize / 512, parts[1].GetProperty("size").GetInt64());
        Repo.Run("sfdisk", $"--verify \"{repaired}\"");
        using (var loop = new LoopLvm(repaired, PvStartSector * 512, pvSize))
        {
            Assert.Equal(VgName, Assert.Single(loop.Report("pvs", "pv", "pv_name,vg_name")).GetProperty("vg_name").GetString());
        }

        var probe = Cli.Run("probe", repaired, "--json").Json;
        Assert.Equal("mbr", probe.GetProperty("disks")[0].GetProperty("partitionTable").GetString());
        Assert.Equal(VgName, probe.GetProperty("srs")[0].GetProperty("vgName").GetString());
    }
}
