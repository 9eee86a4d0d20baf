// SPDX-License-Identifier: MIT
using VRescue.Recovery.Probe;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Probe;

/// <summary>A two-PV SR built with real lvm2: LVs spread over both PVs, and what happens when one PV is absent.</summary>
public sealed class MultiPvProbeTests : IDisposable
{
    private const string SrUuid = "3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d";
    private const string VgName = "VG_XenStorage-" + SrUuid;
    private readonly LoopLvm _lvm;

    public MultiPvProbeTests()
    {
        _lvm = new LoopLvm(64L << 20, 48L << 20);
        _lvm.Lvm($"vgcreate -q --metadatasize 10M {VgName} {_lvm.Devices[0]} {_lvm.Devices[1]}");
        _lvm.Lvm($"lvcreate -q -an -Zn -y -n MGT -L 4M {VgName} {_lvm.Devices[0]}");
        _lvm.Lvm($"lvcreate -q -an -Zn -y -n VHD-11111111-2222-4333-8444-555555555555 -L 8M {VgName} {_lvm.Devices[1]}");
        _lvm.Lvm($"lvcreate -q -an -Zn -y -n LV-66666666-7777-4888-8999-aaaaaaaaaaaa -L 8M {VgName} {_lvm.Devices[0]}");
        _lvm.Lvm($"lvextend -q -y -L +8M {VgName}/VHD-11111111-2222-4333-8444-555555555555 {_lvm.Devices[0]}");
        _lvm.Lvm($"lvextend -q -y -L +4M {VgName}/LV-66666666-7777-4888-8999-aaaaaaaaaaaa {_lvm.Devices[1]}");
    }

    private static IReadOnlyList<FileBlockSource> Open(params string[] paths) => paths.Select(FileBlockSource.Open).ToList();

    [RealFact("lvm", "losetup", Root = true)]
    public void Segments_on_both_pvs_equal_lvs_and_name_the_right_pv()
    {
        var expected = _lvm.Report("lvs --segments", "seg", "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges")
            .Select(r => (Name: r.GetProperty("lv_name").GetString()!, Start: long.Parse(r.GetProperty("seg_start_pe").GetString()!),
                Count: long.Parse(r.GetProperty("seg_size_pe").GetString()!), Range: r.GetProperty("seg_pe_ranges").GetString()!))
            .ToList();
        var pvUuidByDevice = _lvm.Report("pvs", "pv", "pv_name,pv_uuid")
            .ToDictionary(r => r.GetProperty("pv_name").GetString()!, r => r.GetProperty("pv_uuid").GetString()!);

        var sources = Open(_lvm.ImagePaths[0], _lvm.ImagePaths[1]);
        var report = SrProber.Probe(sources);
        sources.ToList().ForEach(s => s.Dispose());

        // The VHD- LV holds no VHD bytes in this test (only the layout matters), which probe must call out.
        Assert.Equal(FailureMode.VdiErrors, report.FailureMode);
        Assert.DoesNotContain(report.Findings, f => f.Code == ProbeFindingMap.PvMissing);
        var sr = Assert.Single(report.Srs);
        Assert.Equal(SrUuid, sr.SrUuid);
        Assert.Equal(2, sr.Pvs.Count);
        Assert.All(sr.Pvs, p => Assert.False(p.Missing));
        foreach (var vdi in sr.Vdis)
        {
            var rows = expected.Where(e => e.Name == vdi.LvName).OrderBy(e => e.Start).ToList();
            var segments = vdi.Segments.OrderBy(s => s.StartExtent).ToList();
            Assert.Equal(rows.Count, segments.Count);
            for (var i = 0; i < rows.Count; i++)
            {
                var device = rows[i].Range[..rows[i].Range.LastIndexOf(':')];
                var firstPe = long.Parse(rows[i].Range[(rows[i].Range.LastIndexOf(':') + 1)..].Split('-')[0]);
                Assert.Equal((rows[i].Start, rows[i].Count, firstPe, pvUuidByDevice[device]),
                    (segments[i].StartExtent, segments[i].ExtentCount, segments[i].PvStartExtent, segments[i].PvUuid));
            }
        }
    }

    [RealFact("lvm", "losetup", Root = true)]
    public void A_missing_pv_is_named_and_the_sr_is_not_recognised()
    {
        var missingUuid = _lvm.Report("pvs", "pv", "pv_name,pv_uuid").Single(r => r.GetProperty("pv_name").GetString() == _lvm.Devices[1])
            .GetProperty("pv_uuid").GetString()!;
        var sources = Open(_lvm.ImagePaths[0]);
        var report = SrProber.Probe(sources);
        sources.ToList().ForEach(s => s.Dispose());

        Assert.Equal(FailureMode.SrNotRecognised, report.FailureMode);
        var finding = Assert.Single(report.Findings, f => f.Code == ProbeFindingMap.PvMissing);
        Assert.Contains(missingUuid, finding.Message);
        Assert.Single(Assert.Single(report.Srs).Pvs, p => p.Missing);
    }

    public void Dispose() => _lvm.Dispose();
}
