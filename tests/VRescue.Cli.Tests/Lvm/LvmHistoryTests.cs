// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;
using static VRescue.Cli.Tests.Lvm.LvmScenario;

namespace VRescue.Cli.Tests.Lvm;

/// <summary>
/// `vrescue lvm history/export/repair` on PVs built by real lvm2 on loop devices; expected facts come from pvck,
/// lvs, pvs, vgs, vgck and vgcfgrestore. One class, so the loop-device scenarios run one after another.
/// </summary>
public sealed class LvmHistoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-hist-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<JsonElement> Versions(JsonElement vg) => vg.GetProperty("versions").EnumerateArray().ToList();

    private static JsonElement Vg(Cli.Result r, string name) =>
        r.Json.GetProperty("vgs").EnumerateArray().Single(v => v.GetProperty("vgName").GetString() == name);

    private static List<string> Strings(JsonElement e, string key) => e.GetProperty(key).EnumerateArray().Select(x => x.GetString()!).ToList();

    /// <summary>(offset, crc) of every place history found a copy on the disk.</summary>
    private static HashSet<(long, string)> Found(Cli.Result r) =>
        r.Json.GetProperty("vgs").EnumerateArray().SelectMany(Versions)
            .SelectMany(v => v.GetProperty("locations").EnumerateArray().Where(l => l.GetProperty("where").GetString() != "backup")
                .Select(l => (l.GetProperty("offsetBytes").GetInt64(), v.GetProperty("crc").GetString()!)))
            .ToHashSet();

    [RealFact("lvm", "losetup", Root = true)]
    public void After_lvremove_history_names_the_deleted_vdi_and_export_restores_it_with_vgcfgrestore()
    {
        using var loop = new LoopLvm(128 * MiB);
        var vg = XenVgName();
        var (keep, gone) = (Guid.NewGuid(), Guid.NewGuid());
        loop.Lvm($"vgcreate --metadatasize 10M {vg} {loop.Device}");
        Batch(loop, [
            $"lvcreate -an -Zn -y -L 4M -n MGT {vg}",
            $"lvcreate -an -Zn -y -L 8M -n VHD-{keep} {vg}",
            $"lvcreate -an -Zn -y -L 8M -n VHD-{gone} {vg}",
            $"lvextend -L +8M {vg}/VHD-{keep}",
            $"lvextend -L +4M {vg}/VHD-{gone}",
        ]);
        WriteMgt(loop, vg, [(keep, "db-01 system"), (gone, "web-01 data")]);
        var segmentsBefore = Segments(loop);
        loop.Lvm($"lvremove -f {vg}/VHD-{gone}");
        var hash = Repo.Sha256File(loop.ImagePath);

        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");

        Assert.Equal(0, history.ExitCode);
        var versions = Versions(Vg(history, vg));
        var removal = versions.Single(v => Strings(v, "removed").Contains($"VHD-{gone}"));
        var before = versions[removal.GetProperty("index").GetInt32() - 1];
        Assert.Contains($"VHD-{gone}", Strings(before, "lvNames"));
        Assert.True(versions[^1].GetProperty("committed").GetBoolean());
        var lost = Assert.Single(Vg(history, vg).GetProperty("lostVolumes").EnumerateArray());
        Assert.Equal("web-01 data", lost.GetProperty("vdiName").GetString());
        var seqno = before.GetProperty("seqno").GetInt64();
        Assert.Equal($"VDI \"web-01 data\" ({gone}) last seen in seqno {seqno}, deleted in {seqno + 1}.", lost.GetProperty("description").GetString());
        var human = Cli.Run("lvm", "history", loop.ImagePath);
        Assert.Contains($"last seen in seqno {seqno}, deleted in {seqno + 1}", human.Stdout);

        var file = Path.Combine(_dir, "restore.vg");
        var export = Cli.Run("lvm", "export", loop.ImagePath, "--vg", vg, "--seqno", seqno.ToString(), "-o", file);
        Assert.Equal(0, export.ExitCode);
        Assert.Equal(hash, Repo.Sha256File(loop.ImagePath));

        using var copy = new LoopLvm(128 * MiB);
        CopyInto(loop.ImagePath, copy);
        copy.Lvm($"vgcfgrestore -f {file} {vg}");
        Assert.Equal(segmentsBefore, Segments(copy));

        // vgcfgrestore wrote file seqno + 1: two different texts with the same seqno (a rollback) are told apart by CRC.
        copy.Lvm("vgs"); // let LVM settle its view of the copy
        var rolled = Cli.Run("lvm", "history", copy.ImagePath, "--json");
        var twins = Versions(Vg(rolled, vg)).Where(v => v.GetProperty("seqno").GetInt64() == seqno + 1).ToList();
        Assert.Equal(2, twins.Count);
        Assert.NotEqual(twins[0].GetProperty("crc").GetString(), twins[1].GetProperty("crc").GetString());
        Assert.Contains($"VHD-{gone}", Strings(Versions(Vg(rolled, vg))[^1], "lvNames"));
        var ambiguous = Cli.Run("lvm", "export", copy.ImagePath, "--vg", vg, "--seqno", (seqno + 1).ToString(), "-o", Path.Combine(_dir, "x.vg"));
        Assert.Equal(ExitCodes.Usage, ambiguous.ExitCode);
        Assert.Contains("--crc", ambiguous.Stderr);
        var pick = Cli.Run("lvm", "export", copy.ImagePath, "--vg", vg, "--seqno", (seqno + 1).ToString(), "--crc", twins[0].GetProperty("crc").GetString()!, "-o", Path.Combine(_dir, "x.vg"));
        Assert.Equal(0, pick.ExitCode);
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Zeroed_label_and_mda_header_history_matches_pvck_and_repair_gives_clean_pvs_vgs_lvs_vgck()
    {
        using var loop = new LoopLvm(128 * MiB);
        var vg = XenVgName();
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        Batch(loop, Enumerable.Range(0, 6).SelectMany(i => new[]
        {
            $"lvcreate -an -Zn -y -L 4M -n VHD-{Guid.NewGuid()} {vg}",
            $"lvextend -L +4M {vg}/MGT",
        }).Prepend($"lvcreate -an -Zn -y -L 4M -n MGT {vg}"));
        var segments = Segments(loop);
        var pv = Assert.Single(loop.Report("pvs", "pv", "pv_uuid,pe_start"));
        var seqno = long.Parse(Assert.Single(loop.Report("vgs", "vg", "vg_seqno")).GetProperty("vg_seqno").GetString()!);
        Zero(loop.ImagePath, 0, 2048);
        Zero(loop.ImagePath, 4096, 512);
        Repo.Run("blockdev", $"--flushbufs {loop.Device}", check: false);
        var pvck = PvckSearch(loop);
        Assert.True(pvck.Count >= 13, $"pvck found {pvck.Count}");
        var hash = Repo.Sha256File(loop.ImagePath);

        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");

        Assert.Equal(0, history.ExitCode);
        Assert.Equal(pvck.Select(p => (p.Offset, p.Crc)).ToHashSet(), Found(history));
        Assert.False(Versions(Vg(history, vg))[^1].GetProperty("committed").GetBoolean());
        Assert.Equal(seqno, Versions(Vg(history, vg))[^1].GetProperty("seqno").GetInt64());

        var target = Path.Combine(_dir, "repaired.img");
        var repair = Cli.Run("lvm", "repair", loop.ImagePath, "--vg", vg, "--seqno", seqno.ToString(), "--into", target);
        Assert.True(repair.ExitCode == 0, repair.Stderr + repair.Stdout);
        Assert.Equal(hash, Repo.Sha256File(loop.ImagePath));

        using var copy = new LoopLvm(128 * MiB);
        CopyInto(target, copy);
        copy.Lvm($"vgck {vg}");
        copy.Lvm($"pvck {copy.Device}");
        Assert.DoesNotContain("CHECK", copy.Lvm($"pvck --dump headers {copy.Device}"));
        Assert.Equal(segments, Segments(copy));
        var pvAfter = Assert.Single(copy.Report("pvs", "pv", "pv_uuid,pe_start,vg_name"));
        Assert.Equal(pv.GetProperty("pv_uuid").GetString(), pvAfter.GetProperty("pv_uuid").GetString());
        Assert.Equal(pv.GetProperty("pe_start").GetString(), pvAfter.GetProperty("pe_start").GetString());
        Assert.Equal((seqno + 1).ToString(), Assert.Single(copy.Report("vgs", "vg", "vg_seqno")).GetProperty("vg_seqno").GetString());

        // The repaired copy reads as healthy and its history keeps the old versions too.
        var again = Cli.Run("lvm", "history", target, "--json");
        Assert.True(Versions(Vg(again, vg))[^1].GetProperty("committed").GetBoolean());
        Assert.Equal(seqno + 1, Versions(Vg(again, vg))[^1].GetProperty("seqno").GetInt64());
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Sr_reinitialised_on_the_same_device_keeps_the_old_vg_versions_as_a_different_vg()
    {
        using var loop = new LoopLvm(128 * MiB);
        var (oldVg, newVg) = (XenVgName(), XenVgName());
        loop.Lvm($"vgcreate --metadatasize 10M {oldVg} {loop.Device}");
        var tags = string.Join(' ', Enumerable.Range(0, 100).Select(i => $"--addtag t{i}_{new string('x', 1000)}"));
        loop.Lvm($"vgchange {tags} {oldVg}");
        Batch(loop, Enumerable.Range(0, 110).Select(i => $"vgchange --addtag n{i} {oldVg}"));
        var oldId = Assert.Single(loop.Report("vgs", "vg", "vg_uuid")).GetProperty("vg_uuid").GetString()!;

        // XenServer's lvutil.createVG: zero the first 10 MiB, then vgcreate --metadatasize 10M.
        Zero(loop.ImagePath, 0, 10 * MiB);
        Repo.Run("blockdev", $"--flushbufs {loop.Device}", check: false);
        loop.Lvm($"vgcreate -y --metadatasize 10M {newVg} {loop.Device}");
        loop.Lvm($"lvcreate -an -Zn -y -L 4M -n MGT {newVg}");
        var pvck = PvckSearch(loop);
        Assert.Contains(pvck, p => p.VgId == oldId);

        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");

        var old = Vg(history, oldVg);
        Assert.Equal(oldId, old.GetProperty("vgId").GetString());
        Assert.True(Versions(old).Count >= pvck.Count(p => p.VgId == oldId));
        Assert.All(Versions(old), v => Assert.True(v.GetProperty("offsetBytes").GetInt64() >= 10 * MiB));
        Assert.True(Versions(Vg(history, newVg))[^1].GetProperty("committed").GetBoolean());
        Assert.Equal(pvck.Select(p => (p.Offset, p.Crc)).ToHashSet(), Found(history));
        var human = Cli.Run("lvm", "history", loop.ImagePath);
        Assert.Contains($"VG {oldVg} (uuid {oldId})", human.Stdout);
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Wrapped_copies_in_a_small_ring_are_reassembled_like_pvck_does()
    {
        using var loop = new LoopLvm(64 * MiB);
        var vg = XenVgName();
        loop.Lvm($"pvcreate --metadatasize 32k --dataalignment 64k {loop.Device}");
        loop.Lvm($"vgcreate -s 1M {vg} {loop.Device}");
        Batch(loop, Enumerable.Range(0, 40).Select(i => i % 4 == 3 ? $"lvextend -L +1M {vg}/lv{i - 1}" : $"lvcreate -an -Zn -y -L 1M -n lv{i} {vg}"));
        var pvck = PvckSearch(loop);

        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");

        Assert.Equal(pvck.Select(p => (p.Offset, p.Crc)).ToHashSet(), Found(history));
        var versions = Versions(Vg(history, vg));
        Assert.Contains(versions, v => v.GetProperty("wrapped").GetBoolean());
        Assert.True(versions[^1].GetProperty("committed").GetBoolean());
        Assert.Equal(versions.Select(v => v.GetProperty("seqno").GetInt64()).Order(), versions.Select(v => v.GetProperty("seqno").GetInt64()));
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Ring_with_more_than_200_versions_lists_them_all_in_order()
    {
        using var loop = new LoopLvm(64 * MiB);
        var vg = XenVgName();
        loop.Lvm($"vgcreate -s 1M {vg} {loop.Device}");
        Batch(loop, Enumerable.Range(0, 105).SelectMany(i => new[] { $"lvcreate -an -Zn -y -L 1M -n lv{i} {vg}", $"lvremove -f {vg}/lv{i}" }));
        var pvck = PvckSearch(loop);
        Assert.True(pvck.Count > 200, $"pvck found {pvck.Count}");

        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");

        var versions = Versions(Vg(history, vg));
        Assert.Equal(pvck.Count, versions.Count);
        Assert.Equal(pvck.Select(p => (p.Offset, p.Crc)).ToHashSet(), Found(history));
        Assert.Equal(Enumerable.Range(1, versions.Count).Select(i => (long)i), versions.Select(v => v.GetProperty("seqno").GetInt64()));
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Repair_refuses_a_version_whose_extents_a_later_lv_reused_and_names_it()
    {
        using var loop = new LoopLvm(64 * MiB);
        var vg = XenVgName();
        var (gone, reuse) = ($"VHD-{Guid.NewGuid()}", $"VHD-{Guid.NewGuid()}");
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        Batch(loop, [$"lvcreate -an -Zn -y -L 8M -n {gone} {vg}", $"lvremove -f {vg}/{gone}", $"lvcreate -an -Zn -y -L 8M -n {reuse} {vg}"]);
        var history = Cli.Run("lvm", "history", loop.ImagePath, "--json");
        var with = Versions(Vg(history, vg)).Single(v => Strings(v, "lvNames").Contains(gone)).GetProperty("seqno").GetInt64();
        var hash = Repo.Sha256File(loop.ImagePath);
        var target = Path.Combine(_dir, "t.img");

        var repair = Cli.Run("lvm", "repair", loop.ImagePath, "--vg", vg, "--seqno", with.ToString(), "--into", target);

        Assert.Equal(ExitCodes.Damaged, repair.ExitCode);
        Assert.Contains(reuse, repair.Stderr);
        Assert.Contains(gone, repair.Stderr);
        Assert.False(File.Exists(target));
        Assert.Equal(hash, Repo.Sha256File(loop.ImagePath));
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void Repair_and_export_refuse_the_source_as_target_also_through_links()
    {
        using var loop = new LoopLvm(32 * MiB);
        var vg = XenVgName();
        loop.Lvm($"vgcreate {vg} {loop.Device}");
        var hash = Repo.Sha256File(loop.ImagePath);
        var symlink = Path.Combine(_dir, "link.img");
        File.CreateSymbolicLink(symlink, loop.ImagePath);
        var hardlink = Path.Combine(_dir, "hard.img");
        Repo.Run("ln", $"{loop.ImagePath} {hardlink}");

        foreach (var target in new[] { loop.ImagePath, symlink, hardlink, loop.Device })
        {
            var r = Cli.Run("lvm", "repair", loop.ImagePath, "--vg", vg, "--seqno", "1", "--into", target);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("refusing to write", r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
        }

        var viaDevice = Cli.Run("lvm", "repair", loop.Device, "--vg", vg, "--seqno", "1", "--into", loop.ImagePath);
        Assert.Contains("refusing to write", viaDevice.Stderr);
        var export = Cli.Run("lvm", "export", loop.ImagePath, "--vg", vg, "--seqno", "1", "-o", symlink);
        Assert.NotEqual(0, export.ExitCode);
        Assert.Equal(hash, Repo.Sha256File(loop.ImagePath));
    }
}
