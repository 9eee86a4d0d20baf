// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Formats.Lvm;
using VRescue.Recovery.Carving;
using VRescue.Recovery.Sr;
using VRescue.Storage;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Current metadata whose numbers are hostile (seeded fuzz finds): what carving and recover take from it is bounded by
/// the source, not by the LV sizes the text claims.
/// </summary>
public sealed class CarveHostileMetadataTests
{
    private const int MiB = 1024 * 1024;
    private const int Mda = 4096;
    private const long ExtentBytes = 4 * MiB;
    private const string Vg = "VG_XenStorage-0e1d2c3b-4a59-4867-9f8e-7d6c5b4a3928";
    private const string PvId = "ppJvqW-KZey-ljd1-y8gZ-S6qi-e71q-qMd8mp";

    /// <summary>A 32 MiB PV (pe_start 1 MiB, 7 extents of 4 MiB) whose committed text holds <paramref name="lvs"/>.</summary>
    private static byte[] Pv(string lvs)
    {
        var text = Encoding.ASCII.GetBytes(
            $"{Vg} {{\nid = \"prQQDG-bJQ6-0B8s-1aSc-83e1-ZBmO-9ObQVc\"\nseqno = 3\nformat = \"lvm2\"\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n" +
            "flags = []\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\nphysical_volumes {\n\npv0 {\n" +
            $"id = \"{PvId}\"\ndevice = \"/dev/loop0\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 65536\npe_start = 2048\npe_count = 7\n}}\n}}\n" +
            $"\nlogical_volumes {{\n{lvs}}}\n}}\ncontents = \"Text Format Volume Group\"\nversion = 1\n\0");
        var disk = new byte[32 * MiB];
        text.CopyTo(disk, Mda + 512);
        LvmMdaHeader.Create(Mda, MiB - Mda, new LvmRawLocation(512, (ulong)text.Length, LvmCrc.Compute(text), 0)).Raw.CopyTo(disk.AsSpan(Mda));
        LvmLabel.Create(1, LvmUuid.Strip(PvId), (ulong)disk.Length, [new LvmDiskLocation(MiB, 0)], [new LvmDiskLocation(Mda, MiB - Mda)])
            .Raw.CopyTo(disk.AsSpan(512));
        return disk;
    }

    private static string Lv(string name, long pe, long count) =>
        $"{name} {{\nid = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-{pe % 1000000:D6}\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 1\n\n" +
        $"segment1 {{\nstart_extent = 0\nextent_count = {count}\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", {pe}\n]\n}}\n}}\n";

    [Fact]
    public void Extent_count_in_the_millions_claims_only_the_extents_on_the_source()
    {
        // Fuzz find (sr-sample, extent_count 1 -> 99,999,999): recover and carve listed one claimed extent per extent of
        // the claimed LV size (7.3 GB RSS, past the 20 s limit). 2,000,000 keeps the unfixed run short enough to fail.
        var sources = new IBlockSource[]
        {
            new MemoryBlockSource(Pv(Lv("MGT", 0, 1) + Lv("VHD-c3d4e5f6-0001-4a7b-8c9d-0e1f2a3b4c5d", 1, 2_000_000) +
                Lv("LV-c3d4e5f6-0003-4a7b-8c9d-0e1f2a3b4c5d", 100_000_000_000, 1)), "pv.img"),
        };
        var onSource = (sources[0].LengthBytes - MiB + ExtentBytes - 1) / ExtentBytes;

        var vg = Assert.Single(CarveCurrentVgReader.Read(sources));
        var vhd = Assert.Single(vg.Lvs, l => l.LvName.StartsWith("VHD-", StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(1, (int)onSource - 1).Select(pe => MiB + (pe * ExtentBytes)), vhd.Pes.Select(p => p.OffsetBytes));
        Assert.Empty(Assert.Single(vg.Lvs, l => l.LvName.StartsWith("LV-", StringComparison.Ordinal)).Pes);

        var known = CarveRecovery.KnownExtents(sources, SrAssembler.Assemble(sources).Srs);
        Assert.Equal(Enumerable.Range(0, (int)onSource).Select(pe => MiB + (pe * ExtentBytes)).Order(), known.Select(k => k.OffsetBytes).Order());
    }

    [Fact]
    public void Overlapping_segments_claim_each_extent_once()
    {
        var segments = string.Concat(Enumerable.Range(1, 50).Select(i =>
            $"segment{i} {{\nstart_extent = {i - 1}\nextent_count = 100000\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 0]\n}}\n"));
        var lv = $"VHD-c3d4e5f6-0001-4a7b-8c9d-0e1f2a3b4c5d {{\nid = \"x\"\nstatus = [\"READ\"]\nsegment_count = 50\n{segments}}}\n";
        var sources = new IBlockSource[] { new MemoryBlockSource(Pv(lv), "pv.img") };
        var onSource = (int)((sources[0].LengthBytes - MiB + ExtentBytes - 1) / ExtentBytes);

        var vg = Assert.Single(CarveCurrentVgReader.Read(sources));
        Assert.Equal(onSource, Assert.Single(vg.Lvs).Pes.Count);
        Assert.Equal(onSource, CarveRecovery.KnownExtents(sources, SrAssembler.Assemble(sources).Srs).Count);
    }
}
