// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Export;
using VRescue.Recovery.Sr;
using VRescue.Recovery.Vhd;
using VRescue.Storage;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Carving;

/// <summary>What recover carved: the carve and the VDIs no metadata maps (to export), and why carving ran.</summary>
public sealed record CarveRecoveryPlan(CarveResult Result, IReadOnlyList<CarvedVdi> Vdis, string Reason, IReadOnlyList<string> Notes)
{
    /// <summary>Raw VDIs found by their guest ext4 and proven contiguous: exported.</summary>
    public IReadOnlyList<CarvedRawVdi> RawVdis => Result.RawVdis.Where(r => r.Recovered).ToList();

    /// <summary>Raw VDIs whose extents cannot all be proven: reported, not exported.</summary>
    public IReadOnlyList<CarvedRawVdi> UnprovenRawVdis => Result.RawVdis.Where(r => !r.Recovered).ToList();

    public int ExportCount => Vdis.Count + RawVdis.Count;
}

/// <summary>
/// `vrescue recover` falls back on carving (issue 8) when no metadata maps a VDI: no VG metadata at all (label and
/// ring gone), or VHD heads in extents that no metadata version gives to an LV (an SR re-created over the old one).
/// </summary>
public static class CarveRecovery
{
    /// <summary>
    /// Decides whether to carve and carves: always when <paramref name="anyMetadata"/> is false (no VG metadata, current,
    /// ring or backup, was readable); with metadata, only when a quick look at every extent start of the current VG's grid finds a VHD
    /// head in an extent no metadata maps (1.5 KiB read per extent). Null when carving is not needed or found nothing.
    /// </summary>
    public static CarveRecoveryPlan? Plan(IReadOnlyList<IBlockSource> sources, IReadOnlyList<AssembledSr> metadataSrs, bool anyMetadata,
        CancellationToken cancel)
    {
        var known = KnownExtents(sources, metadataSrs);
        string reason;
        if (!anyMetadata)
        {
            // Without any metadata, carve only what looks like an SR: a whole-disk carve of an unrelated disk would
            // read all of it to find nothing.
            if (FirstVhdHeadOnMiBGrid(sources, cancel) is null)
            {
                return null;
            }

            reason = "no VG metadata is readable (label and metadata area unreadable or gone)";
        }
        else if (UnmappedHead(sources, known, cancel) is { } head)
        {
            reason = $"a VHD head at byte 0x{head.OffsetBytes:X} of {sources[head.Source].Name} lies in an extent no metadata version maps (SR re-created over an older one?)";
        }
        else
        {
            return null;
        }

        var result = Carver.Carve(sources, new CarveOptions { KnownExtents = known }, null, cancel);
        var footers = metadataSrs.SelectMany(s => s.Vdis).Where(v => v.Image?.Footer is not null).Select(v => v.Image!.Footer!.Uuid).ToHashSet();
        // What the carve says of the whole PV (heads it could not read or had to leave out, ...); per-VDI findings go to their VDI.
        var notes = result.Findings.Where(f => f.Severity >= Severity.Warning).Select(f => $"carving: {f.Code}: {f.Message}").ToList();
        var parents = result.Vdis.Where(v => v.ParentId is not null).Select(v => v.ParentId!.Value).ToHashSet();
        var export = new List<CarvedVdi>();
        foreach (var v in result.Vdis)
        {
            if (footers.Contains(v.Footer.Uuid))
            {
                notes.Add($"carving found {v.LvName} (footer uuid {v.Footer.Uuid}), which metadata already maps; taken from the metadata");
            }
            else if (v.Footer.Hidden != 0 && parents.Contains(v.Id))
            {
                notes.Add($"carved {v.LvName} is a hidden base copy; its data is part of the carved VDIs that use it as a parent");
            }
            else
            {
                export.Add(v);
            }
        }

        return result.Vdis.Count == 0 && result.RawVdis.Count == 0 ? null : new CarveRecoveryPlan(result, export, reason, notes);
    }

    /// <summary>Exports one carved VDI (chain through its carved parents, sector bitmaps honoured) into <paramref name="dir"/>.</summary>
    public static ExportedVdi Export(CarveRecoveryPlan plan, CarvedVdi v, IReadOnlyList<IBlockSource> sources, string dir, ExportFormat format,
        IProgress<ExportProgress>? progress, int index, int count, CancellationToken cancel)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var r = plan.Result;
        var uuid = v.VdiUuid ?? v.Footer.Uuid;
        var ext = format == ExportFormat.Vhd ? "vhd" : "raw";
        var byId = r.Vdis.ToDictionary(x => x.Id);
        var views = r.Vdis.ToDictionary(x => x.Id, x => (IBlockSource)Carver.OpenLv(r, x, sources));
        var placed = v.Extents.Where(e => e is not null).Select(e => e!).ToList();
        var min = v.Extents.Length == 0 ? 0 : v.Extents.Min(e => e?.Confidence ?? 0);
        var low = placed.Count(e => e.Confidence < 0.8);
        var ambiguous = placed.Count(e => e.Ambiguous);
        var warnings = new List<string>
        {
            $"no metadata maps this VDI: recovered by carving ({v.LvName}, VHD head at PE {v.Head.Pe} of {sources[v.Head.Source].Name}); " +
            $"{placed.Count} of {v.ExtentCount} extents placed, lowest confidence {min:0.00}, {low} below 0.8, {ambiguous} ambiguous",
        };
        if (v.VdiUuid is null)
        {
            warnings.Add($"VDI uuid unknown (no surviving MGT or child VHD names it): the VHD footer uuid {v.Footer.Uuid} stands in for it");
        }

        warnings.AddRange(v.Findings.Where(f => f.Severity >= Severity.Warning).Select(f => $"{f.Code}: {f.Message}"));
        var chain = new List<ExportChainMember>();
        var hops = 0;
        for (var cur = v; cur is not null && hops++ < 64; cur = cur.ParentId is { } p ? byId[p] : null)
        {
            chain.Add(new ExportChainMember((cur.VdiUuid ?? cur.Footer.Uuid).ToString(), cur.LvName, cur.Footer.DiskType.ToString().ToLowerInvariant(),
                cur.Footer.Uuid.ToString(), cur.Footer.Hidden != 0));
        }

        var entry = new ExportedVdi
        {
            Uuid = uuid.ToString(),
            NameLabel = v.NameLabel,
            Format = ext,
            VirtualSizeBytes = (long)Math.Min(v.Footer.CurrentSizeBytes, VhdFooter.MaxCurrentSizeBytes),
            Chain = chain,
            Source = new ExportSource("carved", null, null, $"carving (no metadata maps it; lowest extent confidence {min:0.00})"),
            Warnings = warnings,
            Status = "failed",
            Hidden = v.Footer.Hidden != 0,
            Deleted = r.CurrentVgs.Count > 0,
            Carve = new ExportCarveInfo(Math.Round(min, 2), v.Footer.Uuid.ToString(), sources[v.Head.Source].Name, v.Head.Pe, v.ExtentCount, placed.Count,
                low, ambiguous, CarveOutput.IncludeInVg(v)),
        };

        IBlockSource? ByUuid(Guid u) => r.Vdis.Where(p => p.Footer.Uuid == u).Select(p => views[p.Id]).FirstOrDefault();
        var vhd = VhdChain.Open(views[v.Id], ByUuid);
        IReadOnlyList<ByteRange> lost = [];
        IBlockSource content;
        if (VdiExporter.NeedsRepair(vhd) && VdiExporter.Repair(VhdTarget.ForLv(views[v.Id], uuid.ToString(), p => ByUuid(p.Uuid)), warnings, false) is { } repaired)
        {
            (content, lost) = repaired;
        }
        else if (vhd.Content is not null)
        {
            content = vhd.Content;
        }
        else
        {
            var why = vhd.Findings.FirstOrDefault(f => f.Severity == Severity.Error);
            return entry with { Error = why is null ? "carved VHD chain cannot be read" : $"{why.Code}: {why.Message}", Seconds = started.Elapsed.TotalSeconds };
        }

        if (format == ExportFormat.Vhd && content.LengthBytes % 512 != 0)
        {
            return entry with { Error = $"virtual size {content.LengthBytes} is not a multiple of 512 bytes; export as raw", Seconds = started.Elapsed.TotalSeconds };
        }

        var file = ExportNames.FileName(uuid, v.NameLabel, ext);
        var (sha, readErrors, written) = VdiExporter.CopyContent(content, ExportNames.PathInside(dir, file), format,
            p => progress?.Report(new ExportProgress(uuid, v.NameLabel, p, content.LengthBytes, index, count)), cancel);
        var unreadable = CarveOutput.UnreadableRanges(v, byId, r.ExtentSizeBytes).Select(x => new ByteRange(x.OffsetBytes, x.LengthBytes))
            .Concat(readErrors).Concat(lost).ToList();
        if (unreadable.Count > 0)
        {
            warnings.Add($"{unreadable.Count} guest range(s) lie in extents that were not found (overwritten or unplaced) and were written as zeros");
        }

        var guessed = CarveOutput.GuessedRanges(v, byId, r.ExtentSizeBytes);
        if (guessed.Count > 0)
        {
            warnings.Add($"{guessed.Count} guest block(s) ({guessed.Sum(g => g.LengthBytes)} bytes, first at guest offset {guessed.Min(g => g.OffsetBytes)}) lie in extents placed on a guess "
                + $"(ambiguous or confidence < {CarveOutput.GuessConfidence:0.0}): they may hold another LV's data");
        }

        return entry with
        {
            File = file,
            Sha256 = sha,
            Status = unreadable.Count > 0 ? "partial" : "exported",
            Partial = unreadable.Count > 0,
            UnreadableRanges = ByteRange.Merge(unreadable),
            WrittenBytes = written,
            Seconds = Math.Round(started.Elapsed.TotalSeconds, 3),
            Carve = entry.Carve! with { GuessedBytes = guessed.Sum(g => g.LengthBytes) },
        };
    }

    /// <summary>Exports a raw VDI carved by its guest ext4 (contiguous, <see cref="CarvedRawVdi.Recovered"/>).</summary>
    public static ExportedVdi ExportRaw(CarveRecoveryPlan plan, CarvedRawVdi raw, IReadOnlyList<IBlockSource> sources, string dir, ExportFormat format,
        IProgress<ExportProgress>? progress, int index, int count, CancellationToken cancel)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var ext = format == ExportFormat.Vhd ? "vhd" : "raw";
        var content = Carver.OpenRaw(plan.Result, raw, sources);
        var min = raw.Extents.Min(e => e?.Confidence ?? 0);
        var low = raw.Extents.Count(e => e is { Confidence: < 0.8 });
        var file = ExportNames.FileName(raw.FsUuid, null, ext);
        var (sha, readErrors, written) = VdiExporter.CopyContent(content, ExportNames.PathInside(dir, file), format,
            p => progress?.Report(new ExportProgress(raw.FsUuid, null, p, content.LengthBytes, index, count)), cancel);
        return new ExportedVdi
        {
            Uuid = raw.FsUuid.ToString(),
            Format = ext,
            VirtualSizeBytes = content.LengthBytes,
            Chain = [new ExportChainMember(raw.FsUuid.ToString(), raw.LvName, "raw", null, false)],
            Source = new ExportSource("carved", null, null, $"carving of a raw VDI by its guest ext4 (lowest extent confidence {min:0.00})"),
            Warnings =
            [
                $"no metadata maps this raw VDI: found by its ext4 superblock at PE {raw.First.Pe} of {sources[raw.First.Source].Name} ({raw.ExtentCount} extents, contiguous; " +
                $"{raw.ExtentCount - low} proven by superblock copies, {low} by contiguity only)",
                $"VDI uuid unknown (LV names are gone): the ext4 file system uuid {raw.FsUuid} stands in for it",
            ],
            Status = readErrors.Count > 0 ? "partial" : "exported",
            Partial = readErrors.Count > 0,
            UnreadableRanges = readErrors,
            File = file,
            Sha256 = sha,
            WrittenBytes = written,
            Deleted = plan.Result.CurrentVgs.Count > 0,
            Carve = new ExportCarveInfo(Math.Round(min, 2), "", sources[raw.First.Source].Name, raw.First.Pe, raw.ExtentCount, raw.Extents.Count(e => e is not null),
                low, 0, true),
            Seconds = Math.Round(started.Elapsed.TotalSeconds, 3),
        };
    }

    /// <summary>
    /// Every extent (source index, absolute offset) that the metadata versions recover uses give to an LV. Walks segments,
    /// not the LV's extents, and only the part of each that lies on its source: a damaged extent_count (99,999,999 in one
    /// segment) would otherwise cost a hash set entry per extent of a 400 TB LV. A segment is one linear run, so its
    /// extents follow its first one on disk; runs are merged per (source, extent grid), so hostile metadata with many
    /// overlapping segments still costs at most one entry per extent of each source.
    /// </summary>
    internal static HashSet<(int Source, long OffsetBytes)> KnownExtents(IReadOnlyList<IBlockSource> sources, IReadOnlyList<AssembledSr> srs)
    {
        var runs = new List<(int Source, long Extent, long Start, long End)>();
        foreach (var sr in srs)
        {
            var extent = sr.Vg.ExtentSizeBytes;
            foreach (var lv in sr.Lvs)
            {
                var source = sources.Select((s, i) => (s, i)).FirstOrDefault(x => x.s.Name == lv.DiskName, (null!, -1)).Item2;
                if (source < 0)
                {
                    continue;
                }

                var length = sources[source].LengthBytes;
                foreach (var seg in lv.Segments)
                {
                    if (seg.StartExtent < 0 || seg.ExtentCount <= 0 || seg.StartExtent > (long.MaxValue / extent) - 1 ||
                        lv.DiskOffset(seg.StartExtent * extent) is not { } first || first < 0 || first >= length)
                    {
                        continue;
                    }

                    var onSource = (length - first + extent - 1) / extent;
                    runs.Add((source, extent, first, first + (Math.Min(seg.ExtentCount, onSource) * extent)));
                }
            }
        }

        var known = new HashSet<(int, long)>();
        foreach (var grid in runs.GroupBy(r => (r.Source, r.Extent, r.Start % r.Extent)))
        {
            var extent = grid.Key.Extent;
            var done = long.MinValue;
            foreach (var (source, _, start, end) in grid.OrderBy(r => r.Start))
            {
                for (var at = Math.Max(start, done); at < end; at += extent)
                {
                    known.Add((source, at));
                }

                done = Math.Max(done, end);
            }
        }

        return known;
    }

    /// <summary>
    /// The first VHD head (footer copy + dynamic header) on a 1 MiB boundary of any source: LVM extents are whole MiB
    /// multiples from a MiB-aligned pe_start, so an SR's VDIs start there. Reads 1.5 KiB per MiB.
    /// </summary>
    private static (int Source, long OffsetBytes)? FirstVhdHeadOnMiBGrid(IReadOnlyList<IBlockSource> sources, CancellationToken cancel)
    {
        const long step = 1L << 20;
        var buffer = new byte[VhdFooterLayout.Size + VhdDynamicHeaderLayout.Size];
        for (var s = 0; s < sources.Count; s++)
        {
            for (long at = 0; at + buffer.Length <= sources[s].LengthBytes; at += step)
            {
                if ((at & ((256L << 20) - 1)) == 0)
                {
                    cancel.ThrowIfCancellationRequested();
                }

                if (sources[s].ReadAt(at, buffer) == buffer.Length && CarveScanner.IsVhdHead(buffer))
                {
                    return (s, at);
                }
            }
        }

        return null;
    }

    /// <summary>The first VHD head at an extent start of the current VG's grid that neither it nor <paramref name="known"/> maps.</summary>
    private static (int Source, long OffsetBytes)? UnmappedHead(IReadOnlyList<IBlockSource> sources, HashSet<(int Source, long OffsetBytes)> known,
        CancellationToken cancel)
    {
        var current = CarveCurrentVgReader.Read(sources).FirstOrDefault(v => v.PeStartBytes is not null);
        if (current is null)
        {
            return null;
        }

        var extent = current.ExtentSizeBytes;
        var buffer = new byte[VhdFooterLayout.Size + VhdDynamicHeaderLayout.Size];
        for (var s = 0; s < sources.Count; s++)
        {
            for (var at = current.PeStartBytes!.Value; at + extent <= sources[s].LengthBytes; at += extent)
            {
                cancel.ThrowIfCancellationRequested();
                if (known.Contains((s, at)) || sources[s].ReadAt(at, buffer) < buffer.Length)
                {
                    continue;
                }

                if (CarveScanner.IsVhdHead(buffer))
                {
                    return (s, at);
                }
            }
        }

        return null;
    }
}
