// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;
using static VRescue.Cli.Tests.Lvm.LvmScenario;

namespace VRescue.Cli.Tests.Lvm;

/// <summary>A two-PV SR built with real lvm2: every version is found on both PVs, and a deleted VDI comes back.</summary>
public sealed class LvmHistoryMultiPvTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-hist2-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact("lvm", "losetup", Root = true)]
    public void Versions_are_found_on_both_pvs_and_a_deleted_vdi_spanning_them_is_restored()
    {
        using var loop = new LoopLvm(64 * MiB, 64 * MiB);
        var (pv0, pv1) = (loop.Devices[0], loop.Devices[1]);
        var vg = XenVgName();
        var (keep, gone) = (Guid.NewGuid(), Guid.NewGuid());
        loop.Lvm($"vgcreate --metadatasize 10M {vg} {pv0} {pv1}");
        loop.Lvm($"lvcreate -an -Zn -y -L 4M -n MGT {vg} {pv0}");
        loop.Lvm($"lvcreate -an -Zn -y -L 8M -n VHD-{keep} {vg} {pv1}");
        loop.Lvm($"lvcreate -an -Zn -y -L 8M -n VHD-{gone} {vg} {pv0}");
        loop.Lvm($"lvextend -L +8M {vg}/VHD-{gone} {pv1}");
        var segmentsBefore = Segments(loop);
        loop.Lvm($"lvremove -f {vg}/VHD-{gone}");
        var hashes = loop.ImagePaths.Select(Repo.Sha256File).ToList();

        var history = Cli.Run("lvm", "history", loop.ImagePaths[0], loop.ImagePaths[1], "--json");
        Assert.Equal(0, history.ExitCode);
        var vgJson = history.Json.GetProperty("vgs").EnumerateArray().Single(v => v.GetProperty("vgName").GetString() == vg);
        var versions = vgJson.GetProperty("versions").EnumerateArray().ToList();
        // LVM writes every version to the metadata area of both PVs: each is found in both images.
        Assert.All(versions, v => Assert.Equal(2, v.GetProperty("locations").EnumerateArray()
            .Select(l => l.GetProperty("source").GetString()).Distinct().Count()));
        var before = versions.Last(v => v.GetProperty("lvNames").EnumerateArray().Any(n => n.GetString() == $"VHD-{gone}"));
        var seqno = before.GetProperty("seqno").GetInt64();

        var file = Path.Combine(_dir, "restore.vg");
        Assert.Equal(0, Cli.Run("lvm", "export", loop.ImagePaths[0], loop.ImagePaths[1], "--vg", vg, "--seqno", seqno.ToString(), "-o", file).ExitCode);
        Assert.Equal(hashes, loop.ImagePaths.Select(Repo.Sha256File).ToList());

        loop.Lvm($"vgcfgrestore -f {file} {vg}");
        Assert.Equal(segmentsBefore, Segments(loop));
        Assert.Contains(loop.Report("lvs --segments", "seg", "lv_name,seg_pe_ranges"),
            s => s.GetProperty("lv_name").GetString() == $"VHD-{gone}" && s.GetProperty("seg_pe_ranges").GetString()!.StartsWith(pv1 + ":", StringComparison.Ordinal));
    }
}
