// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Formats.Xen;
using VRescue.Storage;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Carving;

/// <summary>One exported VDI in the manifest.</summary>
public sealed record CarveManifestVdi(
    string LvName,
    string FooterUuid,
    string? VdiUuid,
    string DiskType,
    bool Hidden,
    string? ParentLvName,
    long VirtualSizeBytes,
    long LvExtentCount,
    bool InCarvedVg,
    string? RawFile,
    string? RawSha256,
    bool Partial,
    IReadOnlyList<CarveManifestRange> UnreadableRanges,
    IReadOnlyList<CarveManifestRange> GuessedRanges,
    double MinConfidence,
    IReadOnlyList<CarveManifestExtent> Extents,
    IReadOnlyList<Finding> Findings,
    string? NameLabel);

/// <summary>A guest byte range that could not be read (its logical extent was not placed).</summary>
public sealed record CarveManifestRange(long OffsetBytes, long LengthBytes, string Reason);

/// <summary>Where one logical extent came from. Every extent is carved; confidence 1.0 means proven by a head.</summary>
public sealed record CarveManifestExtent(long Le, int Source, long Pe, double Confidence, bool Carved, IReadOnlyList<string> Evidence, IReadOnlyList<long>? AlternativePes);

/// <summary>manifest.json of <c>vrescue carve</c> (docs/json/carve.md).</summary>
public sealed record CarveManifest(
    IReadOnlyList<string> Sources,
    long PeStartBytes,
    long ExtentSizeBytes,
    string VgName,
    string? CarvedVgFile,
    string? SrUuid,
    int HeadCount,
    IReadOnlyList<CarveManifestVdi> Vdis,
    IReadOnlyList<Finding> Findings,
    CarveManifestTimings Timings,
    IReadOnlyList<CarveManifestCurrentVg> CurrentVgs,
    IReadOnlyList<CarveManifestRawVdi> RawVdis);

/// <summary>A raw VDI found by its guest ext4: exported when contiguous, else its proven extents and candidates.</summary>
public sealed record CarveManifestRawVdi(
    string LvName,
    string FsUuid,
    string VolumeName,
    long FsSizeBytes,
    long LvExtentCount,
    bool Contiguous,
    bool Recovered,
    bool InCarvedVg,
    string? RawFile,
    string? RawSha256,
    double MinConfidence,
    IReadOnlyList<CarveManifestExtent> Extents,
    IReadOnlyDictionary<string, IReadOnlyList<long>> SuperblockPes,
    IReadOnlyList<Finding> Findings);

/// <summary>A VG with valid current metadata (re-created SR) whose LVs' PEs the carve left alone.</summary>
public sealed record CarveManifestCurrentVg(string VgName, string? SrUuid, long Seqno, IReadOnlyList<CarveManifestCurrentLv> Lvs);

/// <summary>One LV of a current VG and its PEs in the carve grid (as ranges, e.g. "18,22,51-52").</summary>
public sealed record CarveManifestCurrentLv(string LvName, string? VdiUuid, string Pes);

public sealed record CarveManifestTimings(double ScanSeconds, double CatalogSeconds, double SolveSeconds, double ExportSeconds, long ScannedBytes);

/// <summary>
/// Writes a carve's results into an output directory that is never a source: carved.vg (backup-file style,
/// for <c>vgcfgrestore -f</c> on a copy), one raw guest image per VDI (chains resolved through the carved
/// parents, sector bitmaps honoured, sparse) and manifest.json.
/// </summary>
public static class CarveOutput
{
    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary>The VG name carved.vg uses: the SR's (from MGT or a parent name), else a fixed placeholder; never a current VG's name.</summary>
    public static string VgName(CarveResult r) =>
        r.SrUuid is { } sr && r.CurrentVgs.All(c => c.VgName != XenNames.VgName(sr)) ? XenNames.VgName(sr) : "VG_XenStorage-carved";

    /// <summary>Writes everything under <paramref name="outDir"/>; refuses a directory that holds a source.</summary>
    public static CarveManifest Write(CarveResult result, IReadOnlyList<IBlockSource> sources, string outDir, bool exportRaw = true, CancellationToken cancel = default)
    {
        var full = Path.GetFullPath(outDir);
        // Evidence is sacred: nothing is written into a directory that holds a source.
        foreach (var name in result.SourceNames)
        {
            var src = Path.GetFullPath(name);
            if (src == full || src.StartsWith(full + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new ArgumentException($"output directory {outDir} holds the source {name}; choose another --out", nameof(outDir));
            }
        }

        Directory.CreateDirectory(full);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var vgText = WriteVg(result);
        var vgFile = Path.Combine(full, "carved.vg");
        File.WriteAllText(vgFile, vgText);
        var byId = result.Vdis.ToDictionary(v => v.Id);
        var views = result.Vdis.ToDictionary(v => v.Id, v => (IBlockSource)Carver.OpenLv(result, v, sources));
        var entries = new List<CarveManifestVdi>();
        foreach (var v in result.Vdis)
        {
            cancel.ThrowIfCancellationRequested();
            var unreadable = UnreadableRanges(v, byId, result.ExtentSizeBytes);
            var guessed = GuessedRanges(v, byId, result.ExtentSizeBytes);
            string? file = null, sha = null;
            var findings = new List<Finding>(v.Findings);
            if (exportRaw)
            {
                var chain = VhdChain.Open(views[v.Id], uuid => result.Vdis.Where(p => p.Footer.Uuid == uuid).Select(p => views[p.Id]).FirstOrDefault());
                if (chain.Content is { } content)
                {
                    file = SafeName(v.LvName) + ".raw";
                    sha = WriteSparse(content, Path.Combine(full, file), cancel);
                }
                else
                {
                    findings.AddRange(chain.Findings.Where(f => f.Severity == Severity.Error));
                }
            }

            entries.Add(new CarveManifestVdi(
                v.LvName, v.Footer.Uuid.ToString("D"), v.VdiUuid?.ToString("D"), v.Footer.DiskType.ToString().ToLowerInvariant(), v.Footer.Hidden != 0,
                v.ParentLvName, (long)Math.Min(v.Footer.CurrentSizeBytes, long.MaxValue), v.ExtentCount, IncludeInVg(v), file, sha,
                unreadable.Count > 0, unreadable, guessed,
                v.Extents.Length == 0 ? 0 : v.Extents.Min(e => e?.Confidence ?? 0),
                v.Extents.Select((e, le) => e is null
                    ? new CarveManifestExtent(le, -1, -1, 0, false, ["unplaced"], null)
                    : new CarveManifestExtent(le, e.Source, e.Pe, e.Confidence, true, e.Evidence, e.AlternativePes)).ToList(),
                findings, v.NameLabel));
        }

        var raws = new List<CarveManifestRawVdi>();
        foreach (var r in result.RawVdis)
        {
            cancel.ThrowIfCancellationRequested();
            string? file = null, sha = null;
            if (exportRaw && r.Recovered)
            {
                file = SafeName(r.LvName) + ".raw";
                sha = WriteSparse(Carver.OpenRaw(result, r, sources), Path.Combine(full, file), cancel);
            }

            raws.Add(new CarveManifestRawVdi(r.LvName, r.FsUuid.ToString("D"), r.VolumeName, r.FsSizeBytes, r.ExtentCount, r.Contiguous, r.Recovered, r.Recovered,
                file, sha, r.Extents.Min(e => e?.Confidence ?? 0),
                r.Extents.Select((e, le) => e is null
                    ? new CarveManifestExtent(le, -1, -1, 0, false, ["not provable: no superblock copy in this extent and the LV is not contiguous"], null)
                    : new CarveManifestExtent(le, e.Source, e.Pe, e.Confidence, true, e.Evidence, null)).ToList(),
                r.Candidates.ToDictionary(c => c.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), c => c.Value),
                r.Findings));
        }

        var t = result.Timings;
        var manifest = new CarveManifest(result.SourceNames, result.PeStartBytes, result.ExtentSizeBytes, VgName(result), "carved.vg",
            result.SrUuid?.ToString("D"), result.HeadCount, entries, result.Findings,
            new CarveManifestTimings(t.Scan.TotalSeconds, t.Catalog.TotalSeconds, t.Solve.TotalSeconds, watch.Elapsed.TotalSeconds, t.ScannedBytes),
            result.CurrentVgs.Select(vg => new CarveManifestCurrentVg(vg.VgName, vg.SrUuid?.ToString("D"), vg.Seqno,
                vg.Lvs.Select(lv => new CarveManifestCurrentLv(lv.LvName, lv.VdiUuid, Carver.Ranges(lv.Pes.Where(p => p.Pe is not null).Select(p => p.Pe!.Value)))).ToList())).ToList(),
            raws);
        File.WriteAllText(Path.Combine(full, "manifest.json"), JsonSerializer.Serialize(manifest, s_json));
        return manifest;
    }

    /// <summary>A VDI goes into carved.vg when every extent is placed (a VG must map every LE).</summary>
    public static bool IncludeInVg(CarvedVdi v) => v.Extents.All(e => e is not null);

    /// <summary>carved.vg text (backup style) for the complete VDIs plus MGT.</summary>
    public static string WriteVg(CarveResult r)
    {
        var vgName = VgName(r);
        var vg = new LvmConfigSection(vgName);
        vg.Add(new LvmConfigNode("id", LvmConfigValue.FromString(Uuid("vg:" + vgName))));
        vg.Add(new LvmConfigNode("seqno", LvmConfigValue.FromInteger(1)));
        vg.Add(new LvmConfigNode("format", LvmConfigValue.FromString("lvm2")));
        vg.Add(new LvmConfigNode("status", LvmConfigValue.FromStrings(["RESIZEABLE", "READ", "WRITE"])));
        vg.Add(new LvmConfigNode("flags", LvmConfigValue.FromStrings([])));
        vg.Add(new LvmConfigNode("extent_size", LvmConfigValue.FromInteger(r.ExtentSizeBytes / 512)));
        vg.Add(new LvmConfigNode("max_lv", LvmConfigValue.FromInteger(0)));
        vg.Add(new LvmConfigNode("max_pv", LvmConfigValue.FromInteger(0)));
        vg.Add(new LvmConfigNode("metadata_copies", LvmConfigValue.FromInteger(0)));
        var pvs = new LvmConfigSection("physical_volumes");
        for (var s = 0; s < r.SourceNames.Count; s++)
        {
            var pv = new LvmConfigSection($"pv{s}");
            pv.Add(new LvmConfigNode("id", LvmConfigValue.FromString(Uuid("pv:" + vgName + ":" + s))));
            pv.Add(new LvmConfigNode("device", LvmConfigValue.FromString(r.SourceNames[s])));
            pv.Add(new LvmConfigNode("status", LvmConfigValue.FromStrings(["ALLOCATABLE"])));
            pv.Add(new LvmConfigNode("flags", LvmConfigValue.FromStrings([])));
            pv.Add(new LvmConfigNode("dev_size", LvmConfigValue.FromInteger(r.SourceLengths[s] / 512)));
            pv.Add(new LvmConfigNode("pe_start", LvmConfigValue.FromInteger(r.PeStartBytes / 512)));
            pv.Add(new LvmConfigNode("pe_count", LvmConfigValue.FromInteger(r.PeCounts[s])));
            pvs.Add(new LvmConfigNode(pv));
        }

        vg.Add(new LvmConfigNode(pvs));
        var lvs = new LvmConfigSection("logical_volumes");
        if (r.Mgt is { } mgt)
        {
            lvs.Add(new LvmConfigNode(Lv(XenLvName.MgtName, vgName, ["READ", "WRITE", "VISIBLE"], [(0, 1, mgt.Source, mgt.Pe)])));
        }

        foreach (var raw in r.RawVdis.Where(x => x.Recovered))
        {
            lvs.Add(new LvmConfigNode(Lv(raw.LvName, vgName, ["READ", "WRITE", "VISIBLE"], Segments(raw.Extents))));
        }

        foreach (var v in r.Vdis.Where(IncludeInVg))
        {
            // Base copies are read-only (lvchange -p r, xenserver-lvhd.md 1.2).
            var status = v.Footer.Hidden != 0 ? new[] { "READ", "VISIBLE" } : ["READ", "WRITE", "VISIBLE"];
            lvs.Add(new LvmConfigNode(Lv(v.LvName, vgName, status, Segments(v.Extents))));
        }

        vg.Add(new LvmConfigNode(lvs));
        var root = new LvmConfigSection("");
        root.Add(new LvmConfigNode(vg));
        root.Add(new LvmConfigNode("contents", LvmConfigValue.FromString(LvmMetadata.ContentsValue)));
        root.Add(new LvmConfigNode("version", LvmConfigValue.FromInteger(1)));
        root.Add(new LvmConfigNode("description", LvmConfigValue.FromString("Carved by vrescue carve (no LVM metadata survived)")));
        root.Add(new LvmConfigNode("creation_host", LvmConfigValue.FromString("vrescue")));
        root.Add(new LvmConfigNode("creation_time", LvmConfigValue.FromInteger(0)));
        return LvmMetadataWriter.WriteBackup(root);
    }

    private static List<(long Le, long Count, int Source, long Pe)> Segments(IEnumerable<CarvedExtent?> extents)
    {
        var segments = new List<(long Le, long Count, int Source, long Pe)>();
        foreach (var e in extents)
        {
            if (segments.Count > 0 && segments[^1] is var last && last.Source == e!.Source && last.Pe + last.Count == e.Pe)
            {
                segments[^1] = last with { Count = last.Count + 1 };
            }
            else
            {
                segments.Add((e!.LogicalExtent, 1, e.Source, e.Pe));
            }
        }

        return segments;
    }

    private static LvmConfigSection Lv(string name, string vgName, string[] status, List<(long Le, long Count, int Source, long Pe)> segments)
    {
        var lv = new LvmConfigSection(name);
        lv.Add(new LvmConfigNode("id", LvmConfigValue.FromString(Uuid("lv:" + vgName + ":" + name))));
        lv.Add(new LvmConfigNode("status", LvmConfigValue.FromStrings(status)));
        lv.Add(new LvmConfigNode("flags", LvmConfigValue.FromStrings([])));
        lv.Add(new LvmConfigNode("creation_time", LvmConfigValue.FromInteger(0)));
        lv.Add(new LvmConfigNode("creation_host", LvmConfigValue.FromString("vrescue")));
        lv.Add(new LvmConfigNode("segment_count", LvmConfigValue.FromInteger(segments.Count)));
        for (var i = 0; i < segments.Count; i++)
        {
            var (le, count, source, pe) = segments[i];
            var seg = new LvmConfigSection($"segment{i + 1}");
            seg.Add(new LvmConfigNode("start_extent", LvmConfigValue.FromInteger(le)));
            seg.Add(new LvmConfigNode("extent_count", LvmConfigValue.FromInteger(count)));
            seg.Add(new LvmConfigNode("type", LvmConfigValue.FromString("striped")));
            seg.Add(new LvmConfigNode("stripe_count", LvmConfigValue.FromInteger(1)));
            seg.Add(new LvmConfigNode("stripes", LvmConfigValue.FromArray([LvmConfigValue.FromString($"pv{source}"), LvmConfigValue.FromInteger(pe)])));
            lv.Add(new LvmConfigNode(seg));
        }

        return lv;
    }

    /// <summary>A deterministic LVM uuid (lvm2 lib/id/id.c alphabet, 6-4-4-4-4-4-6) so reruns write the same file.</summary>
    private static string Uuid(string seed)
    {
        const string alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(seed));
        var chars = new char[LvmUuid.Length];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = alphabet[hash[i] % alphabet.Length];
        }

        return LvmUuid.Format(new string(chars));
    }

    /// <summary>Below this confidence, or with rival PEs, a placed extent is a guess (CarveSolver: no certain evidence).</summary>
    public const double GuessConfidence = 0.5;

    /// <summary>Guest ranges (the chain's blocks) read from unplaced logical extents: zeros in the export.</summary>
    internal static List<CarveManifestRange> UnreadableRanges(CarvedVdi v, Dictionary<int, CarvedVdi> byId, long size) =>
        BlockRanges(v, byId, size, (cur, b, le, e) => e is null ? $"{cur.LvName}: block {b} lies in unplaced logical extent {le}" : null);

    /// <summary>
    /// Guest ranges read from extents placed on a guess (ambiguous or under <see cref="GuessConfidence"/>): exported with
    /// the solver's best choice, which may be another LV's data, so the guest ranges to distrust are listed with the PEs.
    /// </summary>
    internal static List<CarveManifestRange> GuessedRanges(CarvedVdi v, Dictionary<int, CarvedVdi> byId, long size) =>
        BlockRanges(v, byId, size, (cur, b, le, e) => e is not null && (e.Ambiguous || e.Confidence < GuessConfidence)
            ? $"{cur.LvName}: block {b} lies in logical extent {le}, placed at PE {e.Pe} on a guess (confidence {e.Confidence:0.00}"
              + (e.Ambiguous ? $"; PE(s) {string.Join(", ", e.AlternativePes!)} fit as well)" : ")")
            : null);

    private static List<CarveManifestRange> BlockRanges(CarvedVdi v, Dictionary<int, CarvedVdi> byId, long size, Func<CarvedVdi, int, long, CarvedExtent?, string?> reason)
    {
        var ranges = new List<CarveManifestRange>();
        var hops = 0;
        for (var cur = v; cur is not null && hops < 64; cur = cur.ParentId is { } p ? byId[p] : null, hops++)
        {
            var extentCount = (long)cur.Extents.Length;
            var blockBytes = (long)cur.Header.BlockSizeBytes;
            for (var b = 0; b < cur.Bat.Length; b++)
            {
                if (cur.Bat[b] == Formats.Vhd.VhdBat.Unallocated)
                {
                    continue;
                }

                var start = cur.Bat[b] * 512L;
                var end = start + 512 + blockBytes;
                for (var le = start / size; le <= (end - 1) / size && le < extentCount; le++)
                {
                    if (reason(cur, b, le, cur.Extents[le]) is { } why)
                    {
                        ranges.Add(new CarveManifestRange(b * blockBytes, blockBytes, why));
                        break;
                    }
                }
            }
        }

        return ranges;
    }

    private static string SafeName(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    /// <summary>Copies <paramref name="content"/> to a new sparse file (zero 64 KiB runs are skipped); returns its sha256.</summary>
    private static string WriteSparse(IBlockSource content, string path, CancellationToken cancel)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        var buffer = new byte[4 << 20];
        long offset = 0;
        while (offset < content.LengthBytes)
        {
            cancel.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, content.LengthBytes - offset);
            content.ReadExactlyAt(offset, buffer.AsSpan(0, n));
            sha.AppendData(buffer, 0, n);
            for (var o = 0; o < n; o += 65536)
            {
                var chunk = buffer.AsSpan(o, Math.Min(65536, n - o));
                if (chunk.ContainsAnyExcept((byte)0))
                {
                    file.Position = offset + o;
                    file.Write(chunk);
                }
            }

            offset += n;
        }

        file.SetLength(content.LengthBytes);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
