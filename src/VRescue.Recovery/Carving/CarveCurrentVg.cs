// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Xen;
using VRescue.Recovery.Sr;
using VRescue.Storage;

namespace VRescue.Recovery.Carving;

/// <summary>An LV of a VG whose metadata is valid now, with the carve-grid PEs it holds.</summary>
public sealed record CarveClaimedLv(string LvName, string? VdiUuid, IReadOnlyList<CarveClaimedPe> Pes);

/// <summary>One extent of a current LV: source index, byte offset there, and its PE number in the carve grid (null until mapped or when the grids disagree).</summary>
public readonly record struct CarveClaimedPe(int Source, long OffsetBytes, long? Pe = null);

/// <summary>
/// A VG readable from its current metadata on the carved sources (an SR re-created over the old one: new label, new
/// metadata, new MGT). Its LVs are what they say they are: carving leaves their extents alone.
/// </summary>
public sealed record CarveCurrentVg(string VgName, Guid? SrUuid, long Seqno, long ExtentSizeBytes, long? PeStartBytes, IReadOnlyList<CarveClaimedLv> Lvs)
{
    public IEnumerable<CarveClaimedPe> Pes => Lvs.SelectMany(l => l.Pes);
}

/// <summary>Reads the current VGs of the sources through <see cref="SrAssembler"/> and maps their LVs onto the carve grid.</summary>
public static class CarveCurrentVgReader
{
    /// <summary>The VGs whose current metadata is readable; empty when none is (all metadata gone).</summary>
    public static IReadOnlyList<CarveCurrentVg> Read(IReadOnlyList<IBlockSource> sources) =>
        SrAssembler.Assemble(sources).Srs.Select(sr => Describe(sr, sources)).ToList();

    /// <summary>
    /// The claimed keys (<see cref="CarveSolver.Key"/>) of VGs already put on the carve grid by <see cref="ToGrid"/>; a
    /// finding for each VG whose extents cannot be excluded (other extent size).
    /// </summary>
    public static HashSet<long> Claimed(IReadOnlyList<CarveCurrentVg> vgs, long extentSizeBytes, List<Finding> findings)
    {
        var keys = new HashSet<long>();
        foreach (var vg in vgs)
        {
            if (vg.ExtentSizeBytes != extentSizeBytes)
            {
                findings.Add(new Finding("CARVE_CURRENT_VG_GRID_DIFFERS", Severity.Warning,
                    $"current VG {vg.VgName} uses {vg.ExtentSizeBytes}-byte extents, the carve {extentSizeBytes}: its LVs' extents cannot be excluded; carved extents may overlap them",
                    null, "extent_size", vg.ExtentSizeBytes.ToString(), extentSizeBytes.ToString()));
                continue;
            }

            foreach (var p in vg.Pes)
            {
                if (p.Pe is { } pe)
                {
                    keys.Add(CarveSolver.Key(p.Source, pe));
                }
            }
        }

        return keys;
    }

    private static CarveCurrentVg Describe(AssembledSr sr, IReadOnlyList<IBlockSource> sources)
    {
        var extent = sr.Vg.ExtentSizeBytes;
        var pvs = sr.Probed.Pvs.ToDictionary(p => p.PvUuid);
        long? peStart = null;
        var lvs = new List<CarveClaimedLv>();
        foreach (var lv in sr.Lvs)
        {
            // PV PEs [first, end) per source and PE 0 offset, cut to the PEs that start on the source: the metadata's
            // numbers are not trusted (a damaged extent_count or PV start would otherwise list billions of extents).
            var runs = new List<(int Source, long Pe0, long First, long End)>();
            foreach (var seg in lv.Segments)
            {
                if (!pvs.TryGetValue(seg.PvUuid, out var pv) || pv.Missing || pv.Source is null || pv.OffsetBytes is not { } diskOffset)
                {
                    continue;
                }

                var source = sources.ToList().FindIndex(s => s.Name == pv.Source);
                if (source < 0)
                {
                    continue;
                }

                var pe0 = checked(diskOffset + pv.PeStartBytes);
                peStart ??= pe0;
                var onSource = pe0 < sources[source].LengthBytes ? (sources[source].LengthBytes - pe0 + extent - 1) / extent : 0;
                if (seg.PvStartExtent >= 0 && seg.PvStartExtent < onSource && seg.ExtentCount > 0)
                {
                    runs.Add((source, pe0, seg.PvStartExtent, seg.PvStartExtent + Math.Min(seg.ExtentCount, onSource - seg.PvStartExtent)));
                }
            }

            var pes = new List<CarveClaimedPe>();
            foreach (var grid in runs.GroupBy(r => (r.Source, r.Pe0)))
            {
                var done = 0L;
                foreach (var run in grid.OrderBy(r => r.First))
                {
                    // PV PE p lies at disk offset + pe_start + p x extent (LVM2 lib/format_text: pe_start from the PV header).
                    for (var p = Math.Max(run.First, done); p < run.End; p++)
                    {
                        pes.Add(new CarveClaimedPe(grid.Key.Source, grid.Key.Pe0 + (p * extent)));
                    }

                    done = Math.Max(done, run.End);
                }
            }

            lvs.Add(new CarveClaimedLv(lv.Lv.Name, lv.Name.VdiUuid?.ToString("D"), pes));
        }

        return new CarveCurrentVg(sr.Vg.Name, sr.SrUuid, sr.Vg.Seqno, extent, peStart, lvs);
    }

    /// <summary>Sets each extent's PE number in the carve grid (offsets off the grid keep a null PE).</summary>
    public static IReadOnlyList<CarveCurrentVg> ToGrid(IReadOnlyList<CarveCurrentVg> vgs, long peStartBytes, long extentSizeBytes) =>
        vgs.Select(vg => vg with
        {
            Lvs = vg.Lvs.Select(l => l with
            {
                Pes = l.Pes.Select(p => p with
                {
                    Pe = vg.ExtentSizeBytes == extentSizeBytes && p.OffsetBytes >= peStartBytes && (p.OffsetBytes - peStartBytes) % extentSizeBytes == 0
                        ? (p.OffsetBytes - peStartBytes) / extentSizeBytes : null,
                }).ToList(),
            }).ToList(),
        }).ToList();
}
