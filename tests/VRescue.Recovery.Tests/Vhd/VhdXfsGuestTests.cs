// SPDX-License-Identifier: MIT
using System.Text.RegularExpressions;
using VRescue.Recovery.Vhd;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>
/// XFS made by mkfs.xfs (300 MiB, its minimum; 4 AGs of 19200 4 KiB blocks) written into a XenServer-layout VHD:
/// the judge names it with the label and uuid xfs_db reports, checks the secondary superblocks, maps lost VHD blocks
/// onto AGs and suggests xfs_repair -n.
/// </summary>
public sealed partial class VhdXfsGuestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdxfs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Raw, string Vhd, string Uuid, long AgBytes) Build()
    {
        var raw = Path.Combine(_dir, "xfs.raw");
        using (var f = File.Create(raw))
        {
            f.SetLength(300L << 20);
        }

        Repo.Run("mkfs.xfs", $"-q -f -L vrxfs \"{raw}\"");
        var db = Repo.Run("xfs_db", $"-r -c uuid -c label -c \"sb 0\" -c \"p agblocks blocksize\" \"{raw}\"");
        Assert.Contains("label = \"vrxfs\"", db);
        var uuid = UuidLine().Match(db).Groups[1].Value;
        var agBytes = long.Parse(AgBlocksLine().Match(db).Groups[1].Value) * long.Parse(BlockSizeLine().Match(db).Groups[1].Value);
        var vhd = VhdDamage.RawToXenVhd(raw, Path.Combine(_dir, "xfs.vhd"));
        return (raw, vhd, uuid, agBytes);
    }

    [RealFact("mkfs.xfs", "xfs_db", "xfs_repair")]
    public void Xfs_guest_is_identified_healthy_and_xfs_repair_n_is_suggested_and_clean()
    {
        var (raw, vhd, uuid, _) = Build();
        using var target = VhdTarget.Open(vhd, null);
        var (check, _, _) = VhdInspection.Check(target);

        var volume = Assert.Single(check.Guest!.Volumes);
        Assert.Equal("xfs", volume.Type);
        Assert.Equal("vrxfs", volume.Label);
        Assert.Equal(uuid, volume.Uuid);
        Assert.Equal("healthy", volume.Health);
        Assert.StartsWith("xfs_repair -n -f ", volume.NextStep);

        var output = Path.Combine(_dir, "out.raw");
        VhdInspection.Repair(target, output, "raw", "test");
        Assert.Equal(Repo.Sha256File(raw), Repo.Sha256File(output));
        Repo.Run("xfs_repair", $"-n -f \"{output}\"");
    }

    [RealFact("mkfs.xfs", "xfs_db", "xfs_repair")]
    public void Lost_vhd_blocks_are_mapped_onto_xfs_allocation_groups()
    {
        var (_, vhd, _, agBytes) = Build();
        // The VHD blocks holding AG 1's and AG 2's secondary superblocks: two lost entries, two orphans, nothing to place
        // them by. AG 1 starts 1 MiB into VHD block 37 (that block straddles AGs 0 and 1); AG 2 starts VHD block 75.
        var ag1 = agBytes / (2 << 20);
        var ag2 = 2 * agBytes / (2 << 20);
        VhdDamage.SetBatEntry(vhd, ag1, 0);
        VhdDamage.SetBatEntry(vhd, ag2, 0);
        using var target = VhdTarget.Open(vhd, null);
        var (check, _, _) = VhdInspection.Check(target);

        Assert.Equal(VhdVerdict.DataLoss, check.Verdict);
        var volume = Assert.Single(check.Guest!.Volumes);
        Assert.Equal("xfs", volume.Type);
        Assert.Equal("lost-ranges", volume.Health);
        Assert.Contains(volume.BadAreas, a => a.Contains("(AG 0-1)", StringComparison.Ordinal));
        Assert.Contains(volume.BadAreas, a => a.Contains("(AG 2-2)", StringComparison.Ordinal));
        Assert.DoesNotContain(volume.Findings, f => f.Code == "XFS_SECONDARY_SUPERBLOCK");
        Assert.StartsWith("xfs_repair -n -f ", volume.NextStep);
    }

    [GeneratedRegex(@"UUID = ([0-9a-f-]{36})")]
    private static partial Regex UuidLine();

    [GeneratedRegex(@"agblocks = (\d+)")]
    private static partial Regex AgBlocksLine();

    [GeneratedRegex(@"blocksize = (\d+)")]
    private static partial Regex BlockSizeLine();
}
