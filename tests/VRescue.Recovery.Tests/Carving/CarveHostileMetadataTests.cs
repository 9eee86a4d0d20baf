// SPDX-License-Identifier: MIT
using VRescue.Recovery.Carving;
using VRescue.Recovery.Sr;
using VRescue.Storage;
using static VRescue.Recovery.Tests.Probe.SyntheticXenPv;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Current metadata whose numbers are hostile (seeded fuzz finds): what carving and recover take from it is bounded by
/// the source, not by the LV sizes the text claims.
/// </summary>
public sealed class CarveHostileMetadataTests
{
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
        var onSource = ExtentsOnSource;

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
        var onSource = (int)ExtentsOnSource;

        var vg = Assert.Single(CarveCurrentVgReader.Read(sources));
        Assert.Equal(onSource, Assert.Single(vg.Lvs).Pes.Count);
        Assert.Equal(onSource, CarveRecovery.KnownExtents(sources, SrAssembler.Assemble(sources).Srs).Count);
    }
}
