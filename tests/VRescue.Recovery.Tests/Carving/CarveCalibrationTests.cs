// SPDX-License-Identifier: MIT
using VRescue.Formats.Vhd;
using VRescue.Recovery.Carving;
using VRescue.Storage;

namespace VRescue.Recovery.Tests.Carving;

/// <summary>
/// Confidence against the generator's truth (the bench/carve layout, small): VDIs of one size whose LVs grow round
/// robin by 1-3 extents, so many extents of different VDIs carry the same bitmap sectors and only some are told apart
/// by their bytes. What is provable is worked out from the truth and the written pattern, never from the carve.
/// </summary>
public class CarveCalibrationTests
{
    /// <summary>
    /// 60 extents / 12 VDIs with a random partial pattern per block (some middle extents unique, some lookalikes); 80 / 16
    /// with the bench's pattern (every third block partial, shifted per VDI: lookalikes in groups of five), where the
    /// solver used to give a guessed run of another VDI confidence 0.9 and no alternatives.
    /// </summary>
    [Theory]
    [InlineData(60, 12, 7)]
    [InlineData(80, 16, -1)]
    public void Interleaved_lookalike_extents_are_never_confidently_wrong_and_every_provable_extent_is_placed_sure(long extents, int vdis, int partialSeed)
    {
        var pv = new CarveSyntheticPv();
        var rnd = new Random(partialSeed);
        var partial = new bool[vdis, 64];
        for (var i = 0; i < vdis; i++)
        {
            for (var k = 0; k < 64; k++)
            {
                partial[i, k] = partialSeed < 0 ? (k + i) % 3 == 0 : rnd.Next(2) == 0;
            }
        }

        var path = Path.Combine(Path.GetTempPath(), $"vrescue-carve-calibration-{Guid.NewGuid():N}.img");
        try
        {
            CarveSyntheticLayout layout;
            using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                file.SetLength(CarveSyntheticPv.PeStartBytes + (extents * pv.ExtentBytes));
                layout = pv.WriteInterleaved((o, b) =>
                {
                    file.Position = o;
                    file.Write(b);
                }, extents, vdis, (i, k) => partial[i, k]);
            }

            CarveResult result;
            using (var source = FileBlockSource.Open(path))
            {
                result = Carver.Carve([source], new CarveOptions { PeStartBytes = CarveSyntheticPv.PeStartBytes });
            }

            var (provable, lookalike) = Provable(layout, partial, pv.ExtentBytes);
            Assert.True(partialSeed < 0 || provable.Count > 3 * layout.Truth.Count, "the random pattern must leave content-unique middle extents");
            Assert.NotEmpty(lookalike);

            var found = result.Vdis.ToDictionary(v => v.Footer.Uuid);
            Assert.Equal(layout.Truth.Count, found.Count);
            string Describe(CarvedExtent e) => $"PE {e.Pe} confidence {e.Confidence:0.00} alternatives [{string.Join(",", e.AlternativePes ?? [])}]: {string.Join(" | ", e.Evidence)}";
            foreach (var (uuid, pes) in layout.Truth)
            {
                foreach (var e in found[uuid].Extents.OfType<CarvedExtent>())
                {
                    var flagged = e.Ambiguous || e.Confidence < 0.5;
                    Assert.True(e.Pe == pes[(int)e.LogicalExtent] || flagged, $"{uuid} LE {e.LogicalExtent} is wrong and not flagged (truth PE {pes[(int)e.LogicalExtent]}): {Describe(e)}");
                    if (lookalike.Contains((uuid, e.LogicalExtent)))
                    {
                        Assert.True(flagged, $"{uuid} LE {e.LogicalExtent} looks like another VDI's extent but is reported sure: {Describe(e)}");
                    }
                }
            }

            // Wrong data that is exported is marked where the guest sees it: every block in a wrong extent is a guessed range.
            var byId = result.Vdis.ToDictionary(v => v.Id);
            foreach (var (uuid, pes) in layout.Truth)
            {
                var v = found[uuid];
                var guessed = CarveOutput.GuessedRanges(v, byId, result.ExtentSizeBytes).Select(r => r.OffsetBytes).ToHashSet();
                var blockBytes = (long)v.Header.BlockSizeBytes;
                foreach (var e in v.Extents.OfType<CarvedExtent>().Where(e => e.Pe != pes[(int)e.LogicalExtent]))
                {
                    for (var b = 0; b < v.Bat.Length; b++)
                    {
                        var start = v.Bat[b] * 512L;
                        if (v.Bat[b] != VhdBat.Unallocated && start / result.ExtentSizeBytes <= e.LogicalExtent && (start + 512 + blockBytes - 1) / result.ExtentSizeBytes >= e.LogicalExtent)
                        {
                            Assert.True(guessed.Contains(b * blockBytes), $"{uuid} block {b} lies in wrong LE {e.LogicalExtent} but is not a guessed range");
                        }
                    }
                }
            }

            foreach (var (uuid, le) in provable)
            {
                var e = found[uuid].Extents[le];
                Assert.True(e is not null, $"{uuid} LE {le} is provable but unplaced");
                Assert.True(e.Pe == layout.Truth[uuid][(int)le] && !e.Ambiguous && e.Confidence >= 0.5,
                    $"{uuid} LE {le} is provable (truth PE {layout.Truth[uuid][(int)le]}) but placed {Describe(e)}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// From the truth: LE 0 (head), LE 1 (written next to its head, one lvcreate) and the last LE (footer with the uuid)
    /// are provable; a middle extent is provable when no other VDI's extent has the same bitmap sectors (the blocks whose
    /// bitmap lies in it, at the same offsets, with the same full/partial state), otherwise it is a lookalike.
    /// </summary>
    private static (List<(Guid Uuid, long Le)> Provable, HashSet<(Guid Uuid, long Le)> Lookalike) Provable(CarveSyntheticLayout layout, bool[,] partial, long extentBytes)
    {
        const long firstBitmapSector = 8455, blockSpanSectors = 4104;
        string Pattern(int vdi, long le)
        {
            var blocks = Enumerable.Range(0, layout.BlocksPerVdi).Where(k => (firstBitmapSector + (blockSpanSectors * k)) * 512 / extentBytes == le);
            return string.Join(",", blocks.Select(k => $"{(firstBitmapSector + (blockSpanSectors * k)) * 512 % extentBytes}:{(partial[vdi, k] ? "p" : "f")}"));
        }

        var slots = layout.Truth.Keys.SelectMany(u => Enumerable.Range(0, (int)layout.LvExtents).Select(le => (Uuid: u, Le: (long)le))).ToList();
        Assert.All(layout.Truth.Values, pes => Assert.Equal(pes[0] + 1, pes[1]));
        var middle = slots.Where(s => s.Le > 1 && s.Le < layout.LvExtents - 1)
            .GroupBy(s => $"{s.Le}/{Pattern(layout.Uuids.ToList().IndexOf(s.Uuid), s.Le)}").ToList();
        var provable = slots.Where(s => s.Le <= 1 || s.Le == layout.LvExtents - 1).Concat(middle.Where(g => g.Count() == 1).SelectMany(g => g)).ToList();
        var lookalike = middle.Where(g => g.Count() > 1).SelectMany(g => g).ToHashSet();
        return (provable, lookalike);
    }
}
