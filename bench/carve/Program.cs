// SPDX-License-Identifier: MIT
// Carving benchmark driver (bench/carve/README.md):
//   make IMAGE EXTENTS VDIS [dense]   writes SM-layout VHD LVs, interleaved in lvextend-like runs, into IMAGE
//   carve IMAGE                       carves IMAGE and prints one JSON line of timings
using System.Diagnostics;
using System.Text.Json;
using VRescue.Recovery.Carving;
using VRescue.Recovery.Tests.Carving;
using VRescue.Storage;

if (args is ["make", var path, var n, var v, ..])
{
    var extents = long.Parse(n);
    var vdis = int.Parse(v);
    var pv = new CarveSyntheticPv();
    using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write);
    file.SetLength(Math.Max(file.Length, CarveSyntheticPv.PeStartBytes + (extents * pv.ExtentBytes)));
    void Write(long o, ReadOnlySpan<byte> b)
    {
        file.Position = o;
        file.Write(b);
    }

    // Each VDI: inflated leaf of (extents / vdis) extents; LVs grow round-robin by 1-3 extents (lvextend runs).
    var layout = pv.WriteInterleaved(Write, extents, vdis);

    // The truth the carve is scored against: each complete VDI's footer uuid and the PE of every logical extent.
    File.WriteAllText(path + ".truth.json", JsonSerializer.Serialize(layout.Truth.ToDictionary(t => t.Key.ToString(), t => t.Value)));
    Console.WriteLine($"{{\"extents\":{extents},\"vdis\":{vdis},\"lvExtents\":{layout.LvExtents},\"blocksPerVdi\":{layout.BlocksPerVdi}}}");
    return 0;
}

if (args is ["carve", var image])
{
    using var source = FileBlockSource.Open(image);
    var total = Stopwatch.StartNew();
    var result = Carver.Carve([source], new CarveOptions { PeStartBytes = CarveSyntheticPv.PeStartBytes });
    var placed = result.Vdis.Sum(v => v.Extents.Count(e => e is not null));
    var slots = result.Vdis.Sum(v => v.Extents.Length);

    // Scored against the generator's truth when it is there: a placement is right when it names the PE the generator used.
    var truthPath = image + ".truth.json";
    var truth = File.Exists(truthPath) ? JsonSerializer.Deserialize<Dictionary<string, List<long>>>(File.ReadAllText(truthPath))! : null;
    int? right = null, rightSure = null, wrong = null, wrongFlagged = null;
    (int Right, int Total)? flaggedRun = null, flaggedOther = null;
    double? rightConfidence = null, wrongConfidence = null;
    if (truth is not null)
    {
        var placements = result.Vdis.Where(v => truth.ContainsKey(v.Footer.Uuid.ToString()))
            .SelectMany(v => v.Extents.OfType<CarvedExtent>().Where(e => !e.Filler).Select(e => (Want: truth[v.Footer.Uuid.ToString()][(int)e.LogicalExtent], E: e))).ToList();
        var ok = placements.Where(p => p.Want == p.E.Pe).Select(p => p.E).ToList();
        var bad = placements.Where(p => p.Want != p.E.Pe).Select(p => p.E).ToList();
        (right, wrong) = (ok.Count, bad.Count);
        // A placement is "flagged" when the carve itself says not to trust it: ambiguous, or confidence under 0.5. A wrong
        // one that is not flagged is silent (exported as if sure); a right one that is not flagged is "sure".
        wrongFlagged = bad.Count(e => e.Ambiguous || e.Confidence < 0.5);
        rightSure = ok.Count(e => !e.Ambiguous && e.Confidence >= 0.5);

        // How good the flagged guesses are, apart by whether the PE continues a run from a sure neighbour in the same LV:
        // what the export policy for ambiguous extents (README) is measured on.
        static bool Sure(CarvedExtent? e) => e is { Ambiguous: false, Confidence: >= 0.5 };
        var flagged = result.Vdis.Where(v => truth.ContainsKey(v.Footer.Uuid.ToString())).SelectMany(v => v.Extents.OfType<CarvedExtent>()
            .Where(e => !e.Filler && !Sure(e))
            .Select(e => (Run: new[] { -1, 1 }.Any(d => e.LogicalExtent + d >= 0 && e.LogicalExtent + d < v.Extents.Length
                    && v.Extents[e.LogicalExtent + d] is { } n && Sure(n) && n.Source == e.Source && n.Pe == e.Pe + d),
                Right: truth[v.Footer.Uuid.ToString()][(int)e.LogicalExtent] == e.Pe))).ToList();
        flaggedRun = (flagged.Count(f => f.Run && f.Right), flagged.Count(f => f.Run));
        flaggedOther = (flagged.Count(f => !f.Run && f.Right), flagged.Count(f => !f.Run));
        if (Environment.GetEnvironmentVariable("CARVE_BENCH_DUMP") is not null)
        {
            // Who truly owns each PE, and who the carve gave it to: for reading why a wrong placement looked sure.
            var truthOwner = truth.SelectMany(t => t.Value.Select((pe, le) => (pe, who: $"{t.Key[..8]} LE {le}"))).ToDictionary(x => x.pe, x => x.who);
            var carvedOwner = result.Vdis.SelectMany(d => d.Extents.OfType<CarvedExtent>().Select(e => (e.Pe, who: $"{d.Footer.Uuid.ToString()[..8]} LE {e.LogicalExtent} ({e.Confidence:0.00}{(e.Ambiguous ? " amb" : "")})")))
                .ToDictionary(x => x.Pe, x => x.who);
            foreach (var d in result.Vdis.Where(d => truth.ContainsKey(d.Footer.Uuid.ToString())))
            {
                foreach (var e in d.Extents.OfType<CarvedExtent>().Where(e => !e.Filler && !e.Ambiguous && e.Confidence >= 0.5))
                {
                    var want = truth[d.Footer.Uuid.ToString()][(int)e.LogicalExtent];
                    if (want != e.Pe)
                    {
                        Console.Error.WriteLine($"SILENT {d.Footer.Uuid.ToString()[..8]} LE {e.LogicalExtent}: PE {e.Pe} (truly {truthOwner.GetValueOrDefault(e.Pe, "none")}), truth PE {want} (carved to {carvedOwner.GetValueOrDefault(want, "nobody")}) conf {e.Confidence:0.00}\n    {string.Join("\n    ", e.Evidence)}");
                    }
                }
            }
        }

        if (Environment.GetEnvironmentVariable("CARVE_BENCH_BY_LE") is not null)
        {
            // Right / wrong / unplaced per LE index over the scored VDIs: where along the LVs placement goes astray.
            var scored = result.Vdis.Where(d => truth.ContainsKey(d.Footer.Uuid.ToString())).ToList();
            for (var le = 0; le < scored.Max(d => d.Extents.Length); le++)
            {
                int r = 0, w = 0, u = 0;
                foreach (var d in scored.Where(d => le < d.Extents.Length))
                {
                    var want = truth[d.Footer.Uuid.ToString()][le];
                    _ = d.Extents[le] is not { } e ? u++ : e.Pe == want ? r++ : w++;
                }

                Console.Error.WriteLine($"LE {le}: right {r} wrong {w} unplaced {u}");
            }
        }

        rightConfidence = ok.Count > 0 ? Math.Round(ok.Average(e => e.Confidence), 2) : null;
        wrongConfidence = bad.Count > 0 ? Math.Round(bad.Average(e => e.Confidence), 2) : null;
    }

    Console.WriteLine(JsonSerializer.Serialize(new
    {
        extents = result.PeCounts.Sum(),
        vdis = result.Vdis.Count,
        slots,
        placed,
        placedRight = right,
        placedRightSure = rightSure,
        placedWrong = wrong,
        placedWrongFlagged = wrongFlagged,
        placedWrongSilent = wrong - wrongFlagged,
        flaggedNextToSureRight = flaggedRun is { } fr ? $"{fr.Right}/{fr.Total}" : null,
        flaggedOtherRight = flaggedOther is { } fo ? $"{fo.Right}/{fo.Total}" : null,
        meanConfidenceRight = rightConfidence,
        meanConfidenceWrong = wrongConfidence,
        scanSeconds = result.Timings.Scan.TotalSeconds,
        catalogSeconds = result.Timings.Catalog.TotalSeconds,
        solveSeconds = result.Timings.Solve.TotalSeconds,
        totalSeconds = total.Elapsed.TotalSeconds,
        scannedBytes = result.Timings.ScannedBytes,
    }));
    return 0;
}

Console.Error.WriteLine("usage: CarveBench make IMAGE EXTENTS VDIS | carve IMAGE");
return 64;
