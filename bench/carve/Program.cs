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
    var per = Math.Max(4, extents / vdis);
    var virtualBytes = ((per * pv.ExtentBytes) - 4_329_472 - (per * 2048) - pv.ExtentBytes) / (2L << 20) * (2L << 20);
    var count = pv.InflatedExtents(virtualBytes);
    var maps = Enumerable.Range(0, vdis).Select(_ => new List<long>()).ToList();
    var rnd = new Random(42);
    long next = 0;
    for (var i = 0; i < vdis; i++)
    {
        maps[i].Add(next++);
        maps[i].Add(next++);
    }

    while (maps.Any(m => m.Count < count) && next < extents)
    {
        for (var i = 0; i < vdis && next < extents; i++)
        {
            for (var k = rnd.Next(1, 4); k > 0 && maps[i].Count < count && next < extents; k--)
            {
                maps[i].Add(next++);
            }
        }
    }

    var blocks = (int)(virtualBytes / (2L << 20));
    for (var i = 0; i < vdis; i++)
    {
        if (maps[i].Count == count)
        {
            var seed = i;
            pv.WriteVhd(Write, new Guid(i + 1, 0, 0, new byte[8]), virtualBytes, maps[i], blocks, k => (k + seed) % 3 == 0);
        }
    }

    // The truth the carve is scored against: each complete VDI's footer uuid and the PE of every logical extent.
    File.WriteAllText(path + ".truth.json", JsonSerializer.Serialize(Enumerable.Range(0, vdis).Where(i => maps[i].Count == count)
        .ToDictionary(i => new Guid(i + 1, 0, 0, new byte[8]).ToString(), i => maps[i])));
    Console.WriteLine($"{{\"extents\":{extents},\"vdis\":{vdis},\"lvExtents\":{count},\"blocksPerVdi\":{blocks}}}");
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
    int? right = null, wrong = null, wrongFlagged = null;
    double? rightConfidence = null, wrongConfidence = null;
    if (truth is not null)
    {
        var placements = result.Vdis.Where(v => truth.ContainsKey(v.Footer.Uuid.ToString()))
            .SelectMany(v => v.Extents.OfType<CarvedExtent>().Where(e => !e.Filler).Select(e => (Want: truth[v.Footer.Uuid.ToString()][(int)e.LogicalExtent], E: e))).ToList();
        var ok = placements.Where(p => p.Want == p.E.Pe).Select(p => p.E).ToList();
        var bad = placements.Where(p => p.Want != p.E.Pe).Select(p => p.E).ToList();
        (right, wrong) = (ok.Count, bad.Count);
        // A wrong placement is "flagged" when the carve itself says not to trust it: ambiguous, or confidence under 0.5.
        wrongFlagged = bad.Count(e => e.Ambiguous || e.Confidence < 0.5);
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
        placedWrong = wrong,
        placedWrongFlagged = wrongFlagged,
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
