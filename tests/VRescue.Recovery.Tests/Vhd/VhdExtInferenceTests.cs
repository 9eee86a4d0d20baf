// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Recovery.Vhd;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>ext4 made by mkfs.ext4 -d, written into a XenServer-layout VHD, its BAT damaged; blocks placed by superblock backups.</summary>
public sealed class VhdExtInferenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdext-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>48 MiB ext4 with 1 KiB blocks: 8 MiB groups, so group 1's backup superblock starts VHD block 4 (+1 KiB).</summary>
    private (string Raw, string Vhd, Dictionary<string, string> Files) Build()
    {
        var tree = Directory.CreateDirectory(Path.Combine(_dir, "tree")).FullName;
        var rng = new Random(6);
        var files = new Dictionary<string, string>();
        for (var i = 0; i < 12; i++)
        {
            var data = new byte[rng.Next(200_000, 3_000_000)];
            rng.NextBytes(data);
            File.WriteAllBytes(Path.Combine(tree, $"f{i}.bin"), data);
            files[$"f{i}.bin"] = Convert.ToHexStringLower(SHA256.HashData(data));
        }

        var raw = Path.Combine(_dir, "fs.raw");
        Repo.Run("mkfs.ext4", $"-q -F -b 1024 -E lazy_itable_init=0 -d \"{tree}\" \"{raw}\" 48M");
        var vhd = VhdDamage.RawToXenVhd(raw, Path.Combine(_dir, "fs.vhd"));
        Assert.Equal(Repo.Sha256File(raw), VhdDamage.QemuRawSha(vhd));
        Assert.Matches(@"Disk type\s*:\s*Dynamic", Repo.Run("vhdiinfo", $"\"{vhd}\""));
        return (raw, vhd, files);
    }

    [RealFact("mkfs.ext4", "e2fsck", "debugfs", "qemu-img", "vhdiinfo")]
    public void Lost_entries_are_placed_by_superblock_backup_then_elimination_and_e2fsck_is_clean()
    {
        var (raw, vhd, files) = Build();
        // Block 4 looks unallocated, a later allocated data block points into the footer copy.
        var data = Enumerable.Range(5, 19).First(b => VhdDamage.BatEntry(vhd, b) != 0xFFFFFFFF);
        VhdDamage.SetBatEntry(vhd, 4, 0xFFFFFFFF);
        VhdDamage.SetBatEntry(vhd, data, 0);
        var before = Repo.Sha256File(vhd);
        using var target = VhdTarget.Open(vhd, null);

        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.Repairable, check.Verdict);
        var inferred = Assert.Single(check.PlacedWithoutBat, p => p.Provenance == VhdBlockProvenance.Inferred);
        Assert.Equal(4, inferred.GuestBlock);
        Assert.Contains("backup of group 1", inferred.Evidence);
        Assert.Equal(data, Assert.Single(check.PlacedWithoutBat, p => p.Provenance == VhdBlockProvenance.Elimination).GuestBlock);

        var output = Path.Combine(_dir, "out.raw");
        VhdInspection.Repair(target, output, "raw", "test");
        Assert.Equal(Repo.Sha256File(raw), Repo.Sha256File(output));
        Repo.Run("e2fsck", $"-fn \"{output}\"");
        foreach (var (name, sha) in files)
        {
            var dumped = Path.Combine(_dir, "dump-" + name);
            Repo.Run("debugfs", $"-R \"dump /{name} {dumped}\" \"{output}\"");
            Assert.Equal(sha, Repo.Sha256File(dumped));
        }

        Assert.Equal(before, Repo.Sha256File(vhd));
    }

    [RealFact("mkfs.ext4", "qemu-img", "vhdiinfo")]
    public void Unplaceable_blocks_are_lost_and_the_judge_names_groups_and_inodes()
    {
        var (_, vhd, _) = Build();
        VhdDamage.SetBatEntry(vhd, 1, 0);
        VhdDamage.SetBatEntry(vhd, 2, 0);
        using var target = VhdTarget.Open(vhd, null);
        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.DataLoss, check.Verdict);
        Assert.Equal([new VhdBadRange(2 << 20, 4 << 20, "BAT entry points into the footer copy")], check.BadRanges);
        var volume = Assert.Single(check.Guest!.Volumes);
        Assert.Equal("ext4", volume.Type);
        Assert.Equal("lost-ranges", volume.Health);
        Assert.Contains(volume.BadAreas, a => a.Contains("fs blocks 2048-6143", StringComparison.Ordinal));
        Assert.StartsWith("e2fsck -fn", volume.NextStep);
    }

    [RealFact("mkfs.ext4", "qemu-img", "vhdiinfo")]
    public void Healthy_ext4_inside_is_judged_healthy_with_valid_group_descriptor_checksums()
    {
        var (_, vhd, _) = Build();
        using var target = VhdTarget.Open(vhd, null);
        var (check, _, _) = VhdInspection.Check(target);
        Assert.Equal(VhdVerdict.Clean, check.Verdict);
        var volume = Assert.Single(check.Guest!.Volumes);
        Assert.Equal("healthy", volume.Health);
        Assert.DoesNotContain(volume.Findings, f => f.Code == "EXT_GROUP_DESCRIPTOR");
    }
}
