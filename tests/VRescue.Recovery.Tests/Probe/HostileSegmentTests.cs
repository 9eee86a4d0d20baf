// SPDX-License-Identifier: MIT
using VRescue.Recovery.Export;
using VRescue.Recovery.Sr;
using VRescue.Storage;
using static VRescue.Recovery.Tests.Probe.SyntheticXenPv;

namespace VRescue.Recovery.Tests.Probe;

/// <summary>Current metadata with hostile segment numbers (seeded fuzz finds): findings and partial results, no exceptions.</summary>
public sealed class HostileSegmentTests
{
    private const string Vhd1 = "VHD-c3d4e5f6-0001-4a7b-8c9d-0e1f2a3b4c5d";
    private const string Raw3 = "LV-c3d4e5f6-0003-4a7b-8c9d-0e1f2a3b4c5d";

    [Theory]
    [InlineData(long.MaxValue, 0L, 1L)]
    [InlineData(9_223_372_036_854L, 0L, 1L)]
    [InlineData(1L, 4_611_686_018_427_387_904L, 1L)]
    [InlineData(-5L, 1L, 1L)]
    [InlineData(1L, -1L, 0L)]
    public void Segment_numbers_past_2_to_the_63_bytes_are_unmappable_findings(long extentCount, long pe, long stripeCount)
    {
        // Fuzz find (sr-sample: extent_count 9223372036854775807, stripe_count 0, pe_start 2^64-1): probe, recover and
        // carve stopped with OverflowException in SrAssembler.OpenLv (checked end-of-LV arithmetic).
        var source = new MemoryBlockSource(Pv(Lv("MGT", 0, 1) + Lv(Vhd1, pe, extentCount, stripeCount) + Lv(Raw3, 3, 1), "18446744073709551615"), "pv.img");

        var assembled = SrAssembler.Assemble([source]);

        var finding = Assert.Single(assembled.Report.Findings, f => f.Code == "LV_SEGMENT_UNMAPPABLE");
        Assert.Contains(Vhd1, finding.Message, StringComparison.Ordinal);
        var sr = Assert.Single(assembled.Srs);
        Assert.Equal(3, sr.Lvs.Count);
        Assert.InRange(Assert.Single(sr.Lvs, l => l.Lv.Name == Vhd1).SizeBytes, 0, long.MaxValue);
    }

    [Fact]
    public void Vdi_whose_lv_maps_no_extent_is_reported_not_exported_and_the_others_still_come_back()
    {
        // Fuzz find (sr-lun, "segment_count = --3": the text stops parsing there, the LV keeps no segment): recover wrote
        // a VHD of virtual size 0 and VhdDynamicWriter threw ArgumentOutOfRangeException (internal error, nothing written).
        var empty = $"{Vhd1} {{\nid = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 0\n}}\n";
        var source = new MemoryBlockSource(Pv(Lv("MGT", 0, 1) + empty.Replace(Vhd1, "LV-c3d4e5f6-0001-4a7b-8c9d-0e1f2a3b4c5d", StringComparison.Ordinal) + Lv(Raw3, 3, 1)), "pv.img");
        var dir = Directory.CreateTempSubdirectory("vrescue-hostile-seg-").FullName;
        try
        {
            var report = SrRecoverer.Run([source], Path.Combine(dir, "out"), ExportFormat.Vhd, []);

            var failed = Assert.Single(report.Recovered, v => v.Uuid == "c3d4e5f6-0001-4a7b-8c9d-0e1f2a3b4c5d");
            Assert.Equal("failed", failed.Status);
            Assert.Contains("no data to export", failed.Error, StringComparison.Ordinal);
            var ok = Assert.Single(report.Recovered, v => v.Uuid == "c3d4e5f6-0003-4a7b-8c9d-0e1f2a3b4c5d");
            Assert.Equal("exported", ok.Status);
            Assert.True(File.Exists(Path.Combine(dir, "out", ok.File!)));
            Assert.True(File.Exists(Path.Combine(dir, "out", RecoverReport.FileName)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
