// SPDX-License-Identifier: MIT
using System.Diagnostics;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Formats.Xen;
using VRescue.Storage;
using VRescue.Storage.Volumes;

namespace VRescue.Recovery.Carving;

/// <summary>
/// Rebuilds VHD VDI logical volumes when all LVM metadata is gone (issue 8): scan every extent, open every VHD
/// head, work out from each BAT which logical extents must hold which bitmap sectors, then place logical
/// extents on physical extents with <see cref="CarveSolver"/> (each PE to at most one LV), with a confidence
/// and the evidence for every extent.
/// </summary>
public static class Carver
{
    /// <summary>lvhdutil.calcOverheadEmpty(2 TiB): where SM VHD data starts (xenserver-lvhd.md 2.10).</summary>
    public const long SmOverheadEmptyBytes = 4_329_472;

    /// <summary>Confidence of an extent holding VHD blocks off blktap's grid (<see cref="DistrustOffGrid"/>): a guess.</summary>
    public const double OffGridConfidence = 0.3;

    /// <summary>Bound on retained BAT entries over all heads (hostile PVs full of heads).</summary>
    public const long MaxRetainedBatEntries = 64L << 20;

    /// <summary>Carves <paramref name="sources"/> (each a PV: whole LUN or partition). Read-only.</summary>
    public static CarveResult Carve(IReadOnlyList<IBlockSource> sources, CarveOptions? options = null,
        IProgress<CarveProgress>? progress = null, CancellationToken cancel = default)
    {
        options ??= new CarveOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ExtentSizeBytes, 1L << 20);
        var findings = new List<Finding>();
        var extent = options.ExtentSizeBytes;
        var watch = Stopwatch.StartNew();

        // An SR re-created over the old one has valid metadata: its LVs are known, and their extents are not carved.
        // With pe_start given the probe does not place the grid, so it runs on its own thread beside the extent scan
        // (a few small reads against whole extents; 0.05-0.1 s of parsing and JIT that would otherwise come first).
        IReadOnlyList<CarveCurrentVg> current = [];
        var probe = options.ExcludeCurrentMetadata && options.PeStartBytes is not null
            ? Task.Factory.StartNew(() => CarveCurrentVgReader.Read(sources), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
            : null;
        if (options.ExcludeCurrentMetadata && probe is null)
        {
            current = CarveCurrentVgReader.Read(sources);
        }

        long peStart;
        if (options.PeStartBytes is { } given)
        {
            peStart = given;
        }
        else if (current.FirstOrDefault(v => v.PeStartBytes is not null && v.ExtentSizeBytes == extent) is { } cur)
        {
            peStart = cur.PeStartBytes!.Value;
            findings.Add(new Finding("CARVE_PE_START_FROM_CURRENT_VG", Severity.Info,
                $"pe_start 0x{peStart:X} ({peStart} bytes): from the PV of the current VG {cur.VgName} (a re-created SR keeps XenServer's pe_start, so the old extents keep their PE numbers)", peStart));
        }
        else
        {
            var (found, how) = CarveScanner.FindGrid(sources[0], extent, cancel);
            peStart = found;
            findings.Add(new Finding("CARVE_PE_START_INFERRED", Severity.Info, $"pe_start 0x{peStart:X} ({peStart} bytes): {how}", peStart));
        }

        var pes = new List<CarvePe[]>();
        long scanned = 0;
        try
        {
            for (var s = 0; s < sources.Count; s++)
            {
                var count = Math.Max(0, (sources[s].LengthBytes - peStart) / extent);
                pes.Add(CarveScanner.Scan(sources[s], s, peStart, extent, count, options.Parallelism, progress, cancel));
                scanned += count * extent;
            }
        }
        catch when (probe is not null)
        {
            // The scan's error is the one to report; the probe's, if any, is observed and dropped.
            probe.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
            throw;
        }

        if (probe is not null)
        {
            current = probe.GetAwaiter().GetResult();
        }

        var scanTime = watch.Elapsed;
        watch.Restart();
        current = CarveCurrentVgReader.ToGrid(current, peStart, extent);
        var claimed = CarveCurrentVgReader.Claimed(current, extent, findings);
        foreach (var (source, offset) in options.KnownExtents.Where(k => k.OffsetBytes >= peStart && (k.OffsetBytes - peStart) % extent == 0))
        {
            claimed.Add(CarveSolver.Key(source, (offset - peStart) / extent));
        }
        foreach (var vg in current)
        {
            findings.Add(new Finding("CARVE_CURRENT_VG", Severity.Info,
                $"current VG {vg.VgName} (seqno {vg.Seqno}) is readable: its {vg.Lvs.Count} LV(s) on {vg.Pes.Count(p => p.Pe is not null)} PE(s) are left alone (not carved, never given to an old VDI)"));
        }

        var footerNotes = CarveHeadFooters.Resolve(pes, claimed, extent, options.MaxHeads);
        var allHeads = pes.SelectMany(p => p).Where(p => (p.Kind & CarvePeKind.VhdHead) != 0).ToList();
        var heads = allHeads.Where(h => !claimed.Contains(CarveSolver.Key(h.Source, h.Pe))).ToList();
        if (allHeads.Count > heads.Count)
        {
            findings.Add(new Finding("CARVE_CURRENT_VG_HEADS_SKIPPED", Severity.Info,
                $"{allHeads.Count - heads.Count} VHD head(s) at PE(s) {Ranges(allHeads.Except(heads).Select(h => h.Pe))} belong to LVs of the current VG (or of metadata the caller uses); not carved"));
        }
        var badHeads = pes.SelectMany(p => p).Where(p => (p.Kind & CarvePeKind.BadHead) != 0).ToList();
        if (badHeads.Count > 0)
        {
            findings.Add(new Finding("CARVE_BAD_VHD_HEAD", Severity.Warning,
                $"{badHeads.Count} extent(s) start with 'conectix' but hold no valid VHD dynamic header at 0x200 (cookie, checksum or block size), so there is no BAT to carve by; ignored: PE(s) {Ranges(badHeads.Select(h => h.Pe))}",
                badHeads[0].OffsetBytes));
        }

        var totalExtents = pes.Sum(p => (long)p.Length);
        var vdis = Catalog(heads, options, totalExtents, findings);
        foreach (var v in vdis)
        {
            if (footerNotes.TryGetValue(v.Head, out var note))
            {
                v.Findings.Add(note);
            }
        }

        var mgt = pes.SelectMany(p => p).FirstOrDefault(p => (p.Kind & CarvePeKind.Mgt) != 0 && !claimed.Contains(CarveSolver.Key(p.Source, p.Pe)));
        // Raw VDIs (no VHD structure) by their guest ext4, in extents no VHD head, MGT or current LV holds; their
        // placed extents are kept from the VHD solver.
        var taken = new HashSet<long>(claimed);
        foreach (var k in vdis.Select(v => CarveSolver.Key(v.Head.Source, v.Head.Pe)).Concat(mgt is null ? [] : [CarveSolver.Key(mgt.Source, mgt.Pe)]))
        {
            taken.Add(k);
        }

        var raws = CarveRaw.Find(pes, sources, extent, taken, findings);
        var reserved = raws.SelectMany(r => r.Extents).Where(e => e is not null).Select(e => CarveSolver.Key(e!.Source, e.Pe)).ToHashSet();
        var catalogTime = watch.Elapsed;
        watch.Restart();
        CarveSolver.Solve(pes, vdis, options, findings, mgt, cancel, null, claimed, reserved);
        if (vdis.Any(v => v.Extents.Any(e => e is { Ambiguous: true }))
            && GuestEvidence(pes, vdis, sources, peStart, extent, cancel) is { Count: > 0 } guest)
        {
            // Second solve with what the guests' file systems say about the contested extents.
            foreach (var v in vdis)
            {
                v.Extents = new CarvedExtent?[v.ExtentCount];
            }

            findings.RemoveAll(f => f.Code == "CARVE_GAPS_UNFILLED");
            CarveSolver.Solve(pes, vdis, options, findings, mgt, cancel, guest, claimed, reserved);
        }

        var solveTime = watch.Elapsed;
        if (mgt is not null)
        {
            LinkMgtNames(sources[mgt.Source], mgt, vdis, findings);
        }

        CarveHeadFooters.RefineRebuiltSizes(vdis, sources, peStart, extent);
        foreach (var v in vdis)
        {
            DistrustOffGrid(v, pes, extent);
            var unplaced = v.RequiredExtents.Where(le => v.Extents[le] is null).ToList();
            if (unplaced.Count > 0)
            {
                v.Findings.Add(new Finding("CARVE_EXTENTS_UNPLACED", Severity.Error,
                    $"{v.LvName}: {unplaced.Count} logical extent(s) holding VHD data could not be placed: {Ranges(unplaced)}"));
                v.Findings.AddRange(Overwritten(v, unplaced, current, pes));
            }

            var ambiguous = v.Extents.Where(e => e is { Ambiguous: true }).Select(e => e!).ToList();
            foreach (var a in ambiguous)
            {
                v.Findings.Add(new Finding("CARVE_EXTENT_AMBIGUOUS", Severity.Warning,
                    $"{v.LvName}: logical extent {a.LogicalExtent} is equally well explained by PE {a.Pe} and PE(s) {string.Join(", ", a.AlternativePes!)}; took PE {a.Pe} (confidence {a.Confidence:0.00})",
                    null, "le", a.Pe.ToString(), string.Join(",", a.AlternativePes!)));
            }
        }

        return new CarveResult
        {
            SourceNames = sources.Select(s => s.Name).ToList(),
            SourceLengths = sources.Select(s => s.LengthBytes).ToList(),
            PeStartBytes = peStart,
            ExtentSizeBytes = extent,
            PeCounts = pes.Select(p => (long)p.Length).ToList(),
            Vdis = vdis,
            Mgt = mgt is null ? null : (mgt.Source, mgt.Pe),
            SrUuid = mgt?.MgtSrUuid ?? SrUuidFromParentNames(vdis, current, findings),
            CurrentVgs = current,
            RawVdis = raws,
            Findings = findings,
            Timings = new CarveTimings(scanTime, catalogTime, solveTime, scanned),
            HeadCount = heads.Count,
        };
    }

    /// <summary>
    /// A carved VHD LV's view over its sources (unplaced extents read as zeros). A head whose footer copy was damaged
    /// (<see cref="CarveHeadFooters"/>) reads with the footer carving gave it at offset 0, where tapdisk keeps the copy.
    /// </summary>
    public static IBlockSource OpenLv(CarveResult result, CarvedVdi vdi, IReadOnlyList<IBlockSource> sources)
    {
        var lv = OpenExtents(vdi.LvName, vdi.Extents, result, sources);
        if ((vdi.Head.Kind & CarvePeKind.HeadFooterDamaged) == 0)
        {
            return lv;
        }

        var footer = new byte[VhdFooterLayout.Size];
        vdi.Footer.Encode(footer);
        return new OverlayBlockSource(lv, 0, footer);
    }

    /// <summary>A raw VDI's LV view over its sources (unplaced extents read as zeros).</summary>
    public static ExtentMappedSource OpenRaw(CarveResult result, CarvedRawVdi raw, IReadOnlyList<IBlockSource> sources) =>
        OpenExtents(raw.LvName, raw.Extents, result, sources);

    private static ExtentMappedSource OpenExtents(string name, CarvedExtent?[] extents, CarveResult result, IReadOnlyList<IBlockSource> sources)
    {
        var runs = new List<ExtentRun>();
        foreach (var e in extents)
        {
            if (e is null)
            {
                continue;
            }

            if (runs.Count > 0 && runs[^1] is var last && last.Pv == sources[e.Source] && last.StartExtent + last.ExtentCount == e.LogicalExtent
                && last.PvStartExtent + last.ExtentCount == e.Pe)
            {
                runs[^1] = last with { ExtentCount = last.ExtentCount + 1 };
            }
            else
            {
                runs.Add(new ExtentRun(e.LogicalExtent, 1, sources[e.Source], result.PeStartBytes, e.Pe));
            }
        }

        return new ExtentMappedSource(name, result.ExtentSizeBytes, extents.Length, runs);
    }

    /// <summary>
    /// For each ambiguous extent, each candidate PE scored against the guest ext4 allocation of the VDI (read through
    /// its confidently placed extents): the 4 KiB chunks a partially written VHD block has written (its sector
    /// bitmap in that PE) should lie in blocks the guest file system allocated. Written chunks in free blocks count
    /// against the candidate; many written chunks all in allocated blocks count for it. Full blocks say nothing.
    /// </summary>
    private static Dictionary<(int Vdi, long Le, long Key), (double Delta, string Evidence)> GuestEvidence(IReadOnlyList<CarvePe[]> pes,
        IReadOnlyList<CarvedVdi> vdis, IReadOnlyList<IBlockSource> sources, long peStart, long extent, CancellationToken cancel)
    {
        const int chunkBytes = 4096;
        var result = new Dictionary<(int, long, long), (double, string)>();
        foreach (var v in vdis)
        {
            cancel.ThrowIfCancellationRequested();
            var contested = v.Extents.Where(e => e is { Ambiguous: true }).Select(e => e!).ToList();
            if (contested.Count == 0 || CarveGuestExt4.Open(vdis, v, sources, peStart, extent) is not { } fs)
            {
                continue;
            }

            var blockBytes = (long)v.Header.BlockSizeBytes;
            var sectorsPerChunk = chunkBytes / 512;
            foreach (var e in contested)
            {
                foreach (var pe in e.AlternativePes!.Append(e.Pe).Distinct())
                {
                    if (pe < 0 || pe >= pes[e.Source].Length)
                    {
                        continue;
                    }

                    var p = pes[e.Source][pe];
                    int written = 0, free = 0;
                    for (var b = 0; b < v.Bat.Length; b++)
                    {
                        var at = v.Bat[b] * 512L;
                        if (v.Bat[b] == VhdBat.Unallocated || at / extent != e.LogicalExtent || v.Header.BitmapSizeSectors != 1
                            || (at % extent - CarveScanner.BitmapPhaseBytes) % CarveScanner.GridBytes != 0)
                        {
                            continue;
                        }

                        var pos = (at % extent - CarveScanner.BitmapPhaseBytes) / CarveScanner.GridBytes;
                        var idx = p.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
                        if (idx < 0 || (p.Bitmaps[idx] & CarveScanner.FullFlag) != 0)
                        {
                            continue;
                        }

                        var bitmap = p.BitmapSectors[idx];
                        for (var c = 0; c < blockBytes / chunkBytes; c++)
                        {
                            var first = c * sectorsPerChunk;
                            var any = false;
                            for (var s = first; s < first + sectorsPerChunk && !any; s++)
                            {
                                any = (bitmap[s / 8] & (0x80 >> (s % 8))) != 0;
                            }

                            if (any && fs.ChunkAllocated((b * blockBytes) + (c * chunkBytes)) is { } allocated)
                            {
                                written++;
                                free += allocated ? 0 : 1;
                            }
                        }
                    }

                    if (written < 8)
                    {
                        continue;
                    }

                    var share = (double)free / written;
                    var key = CarveSolver.Key(e.Source, pe);
                    if (share > 0.05)
                    {
                        result[(v.Id, e.LogicalExtent, key)] = (-0.3 * share,
                            $"guest ext4 (fs {fs.FsUuid}): {free} of {written} written 4 KiB chunks in PE {pe} fall in blocks its block bitmaps call free");
                    }
                    else if (free == 0 && written >= 64)
                    {
                        result[(v.Id, e.LogicalExtent, key)] = (0.1,
                            $"guest ext4 (fs {fs.FsUuid}): all {written} written 4 KiB chunks in PE {pe} fall in blocks its block bitmaps call allocated");
                    }
                }
            }
        }

        return result;
    }

    /// <summary>
    /// Every content check of the solver looks for bitmap sectors on blktap's grid (data 4 KiB aligned in the LV,
    /// <see cref="CarveScanner.BitmapPhaseBytes"/>). A VHD not written by tapdisk / vhd-util (qemu-img's layout copied
    /// in with dd: blocks of 2 MiB + 512 packed from 0x800) has blocks off that grid; the extents holding them were
    /// placed by position only (next PE, the footer at LV end), which proves nothing about their data. Those
    /// placements are capped to a guess so the export lists their guest ranges instead of passing them as sure.
    /// Exempt: LE 0 (its PE is the head, named by the footer uuid) and extents holding a guest ext4 superblock copy
    /// exactly where the BAT puts it (content proof that does not need the grid).
    /// </summary>
    private static void DistrustOffGrid(CarvedVdi v, IReadOnlyList<CarvePe[]> pes, long extent)
    {
        var blockBytes = (long)v.Header.BlockSizeBytes;
        var les = new SortedSet<long>();
        var blocks = 0;
        for (var b = 0; b < v.Bat.Length; b++)
        {
            if (v.Bat[b] == VhdBat.Unallocated)
            {
                continue;
            }

            var at = v.Bat[b] * 512L;
            var off = at % extent;
            if (off >= CarveScanner.BitmapPhaseBytes && (off - CarveScanner.BitmapPhaseBytes) % CarveScanner.GridBytes == 0)
            {
                continue;
            }

            blocks++;
            for (var le = Math.Max(1, at / extent); le <= (at + 512 + blockBytes - 1) / extent && le < v.Extents.Length; le++)
            {
                les.Add(le);
            }
        }

        if (blocks == 0)
        {
            return;
        }

        var capped = new List<long>();
        foreach (var le in les)
        {
            if (v.Extents[le] is { } e && e.Confidence > OffGridConfidence
                && CarveSolver.Ext4Agreement(v, le, pes[e.Source][e.Pe], extent) is not { Delta: > 0 })
            {
                v.Extents[le] = e with
                {
                    Confidence = OffGridConfidence,
                    Evidence = [.. e.Evidence, "holds VHD blocks off blktap's 4 KiB data grid: their bitmap sectors cannot be checked, the PE is a guess"],
                };
                capped.Add(le);
            }
        }

        v.Findings.Add(new Finding("CARVE_VHD_OFF_GRID", Severity.Warning,
            $"{v.LvName}: {blocks} block(s) lie off the 4 KiB data grid tapdisk and vhd-util write (the VHD was made by another tool and copied in); "
            + $"logical extent(s) {Ranges(les)} holding them cannot be checked by content"
            + (capped.Count > 0 ? $", placements of LE(s) {Ranges(capped)} lowered to confidence {OffGridConfidence:0.0}" : ""),
            v.Head.OffsetBytes + (long)v.Header.TableOffsetBytes));
    }

    /// <summary>
    /// Unplaced runs of logical extents explained by the current VG: lvm2 gives an LV the free PEs after its previous
    /// extent (lvextend), so the run lay between the PEs of its placed neighbours; current LVs there overwrote it.
    /// </summary>
    private static IEnumerable<Finding> Overwritten(CarvedVdi v, List<long> unplaced, IReadOnlyList<CarveCurrentVg> current, IReadOnlyList<CarvePe[]> pes)
    {
        if (current.Count == 0)
        {
            yield break;
        }

        var owners = new Dictionary<long, string>();
        foreach (var vg in current)
        {
            foreach (var lv in vg.Lvs)
            {
                foreach (var p in lv.Pes.Where(p => p.Pe is not null))
                {
                    owners[CarveSolver.Key(p.Source, p.Pe!.Value)] = $"{vg.VgName}/{lv.LvName}";
                }
            }
        }

        var runs = new List<(long First, long Last)>();
        foreach (var le in unplaced)
        {
            if (runs.Count > 0 && runs[^1].Last == le - 1)
            {
                runs[^1] = (runs[^1].First, le);
            }
            else
            {
                runs.Add((le, le));
            }
        }

        foreach (var (first, last) in runs)
        {
            var before = Enumerable.Range(0, (int)first).Reverse().Select(i => v.Extents[i]).FirstOrDefault(e => e is not null);
            var after = Enumerable.Range((int)last + 1, (int)(v.ExtentCount - last - 1)).Select(i => v.Extents[i]).FirstOrDefault(e => e is not null);
            var source = before?.Source ?? after?.Source ?? v.Head.Source;
            var from = before?.Pe + 1 ?? 0;
            var to = after is not null && after.Source == source ? after.Pe - 1 : pes[source].Length - 1;
            var hits = new List<(long Pe, string Lv)>();
            for (var pe = from; pe <= to && hits.Count < 64; pe++)
            {
                if (owners.TryGetValue(CarveSolver.Key(source, pe), out var lv))
                {
                    hits.Add((pe, lv));
                }
            }

            if (hits.Count == 0)
            {
                continue;
            }

            var where = before is null ? "before" : $"after PE {before.Pe} (LE {before.LogicalExtent})";
            where += after is null ? "" : $" and before PE {after.Pe} (LE {after.LogicalExtent})";
            yield return new Finding("CARVE_EXTENTS_OVERWRITTEN", Severity.Error,
                $"{v.LvName}: logical extent(s) {(first == last ? $"{first}" : $"{first}-{last}")} not found; lvm2 put them {where}, where PE(s) " +
                string.Join(", ", hits.GroupBy(h => h.Lv).Select(g => $"{Ranges(g.Select(h => h.Pe))} now belong to {g.Key}")) +
                ": overwritten by the current VG (SR re-created), read as zeros",
                pes[source][Math.Clamp(hits[0].Pe, 0, pes[source].Length - 1)].OffsetBytes, "le", null, null);
        }
    }

    /// <summary>
    /// Without a surviving MGT: the old SR uuid from a differencing head's parent name (the parent's dm name,
    /// VG_XenStorage--&lt;sr&gt;-VHD--&lt;uuid&gt;, xenserver-lvhd.md 2.7) when it is not a current VG's.
    /// </summary>
    private static Guid? SrUuidFromParentNames(List<CarvedVdi> vdis, IReadOnlyList<CarveCurrentVg> current, List<Finding> findings)
    {
        var found = vdis.Where(v => v.Footer.DiskType == VhdDiskType.Differencing)
            .Select(v => XenNames.TryDecodeDmName(v.Header.ParentUnicodeName, out var vg, out _, out _) && XenNames.TryParseSrVgName(vg, out var sr) ? sr : (Guid?)null)
            .Where(g => g is not null && current.All(c => c.SrUuid != g)).Distinct().ToList();
        if (found.Count != 1)
        {
            return null;
        }

        findings.Add(new Finding("CARVE_SR_UUID_FROM_PARENT_NAME", Severity.Info,
            $"no MGT of the carved SR survives; its SR uuid {found[0]} comes from the parent names of carved differencing VHDs"));
        return found[0];
    }

    /// <summary>
    /// Names from a surviving MGT (XSSM records, xenserver-lvhd.md 4) for carved VDIs whose VDI uuid is known (from a
    /// child's parent name). Records link by VDI uuid only: the LV names that carried the others are gone, and nothing
    /// in a VHD names its VDI, so the remaining names are listed, not guessed onto carved VDIs.
    /// </summary>
    private static void LinkMgtNames(IBlockSource source, CarvePe mgt, List<CarvedVdi> vdis, List<Finding> findings)
    {
        var bytes = new byte[Formats.Xen.XenMgtVolume.MaxVolumeBytes];
        var n = source.ReadAt(mgt.OffsetBytes, bytes);
        var volume = Formats.Xen.XenMgtVolume.Decode(bytes.AsSpan(0, n));
        var linked = 0;
        var used = new HashSet<Guid>();
        foreach (var v in vdis.Where(v => v.VdiUuid is not null))
        {
            var rec = volume.Records.Where(r => r.Uuid == v.VdiUuid).OrderBy(r => r.IsDeleted).FirstOrDefault();
            if (rec is not null)
            {
                v.NameLabel = rec.NameLabel;
                used.Add(v.VdiUuid!.Value);
                linked++;
            }
        }

        var unlinked = volume.Records.Where(r => r.WithinHeaderLength && r.VdiType is "vhd" or "aio" && (r.Uuid is not { } u || !used.Contains(u)))
            .Select(r => $"\"{r.NameLabel}\" ({r.UuidText}{(r.IsDeleted ? ", deleted" : "")})").ToList();
        findings.Add(new Finding("CARVE_MGT_NAMES", Severity.Info,
            $"MGT at PE {mgt.Pe} holds {volume.Records.Count} VDI record(s); {linked} linked to carved VDIs by VDI uuid" +
            (unlinked.Count == 0 ? "" : $"; not linked (no carved VDI with that VDI uuid; LV names are gone): {string.Join(", ", unlinked.Take(32))}"),
            mgt.OffsetBytes));
    }

    internal static string Ranges(IEnumerable<long> values)
    {
        var parts = new List<string>();
        long? start = null, prev = null;
        foreach (var v in values.Order())
        {
            if (prev is { } p && v == p + 1)
            {
                prev = v;
                continue;
            }

            if (start is { } s)
            {
                parts.Add(s == prev ? $"{s}" : $"{s}-{prev}");
            }

            start = prev = v;
        }

        if (start is { } s2)
        {
            parts.Add(s2 == prev ? $"{s2}" : $"{s2}-{prev}");
        }

        // Bounded: a hostile PV can make every other extent match.
        return parts.Count <= MaxRangesListed ? string.Join(",", parts) : $"{string.Join(",", parts.Take(MaxRangesListed))},... ({parts.Count - MaxRangesListed} more ranges)";
    }

    private const int MaxRangesListed = 32;

    private static List<CarvedVdi> Catalog(List<CarvePe> heads, CarveOptions options, long totalExtents, List<Finding> findings)
    {
        var extent = options.ExtentSizeBytes;
        var vdis = new List<CarvedVdi>();
        long retained = 0;
        var seenUuids = new Dictionary<Guid, CarvePe>();
        foreach (var head in heads)
        {
            if (vdis.Count >= options.MaxHeads || retained + head.HeadBat!.Length > MaxRetainedBatEntries)
            {
                findings.Add(new Finding("CARVE_TOO_MANY_HEADS", Severity.Warning,
                    $"{heads.Count} VHD heads found; only the first {vdis.Count} were carved (bounds: {options.MaxHeads} heads, {MaxRetainedBatEntries} BAT entries)"));
                break;
            }

            var footer = head.HeadFooter!;
            var header = head.HeadHeader!;
            if (seenUuids.TryGetValue(footer.Uuid, out var other))
            {
                findings.Add(new Finding("CARVE_DUPLICATE_FOOTER_UUID", Severity.Warning,
                    $"VHD heads at PE {other.Pe} and PE {head.Pe} carry the same footer uuid {footer.Uuid}; tails and parent links by uuid are ambiguous for them",
                    head.OffsetBytes, "uuid", footer.Uuid.ToString()));
            }
            else
            {
                seenUuids[footer.Uuid] = head;
            }

            var v = BuildVdi(vdis.Count, head, footer, header, extent, totalExtents, findings);
            if (v is null)
            {
                continue;
            }

            retained += v.Bat.Length;
            vdis.Add(v);
        }

        // Parent links: header parent uuid = parent's footer uuid; the parent name gives the parent's VDI uuid.
        var byUuid = vdis.GroupBy(v => v.Footer.Uuid).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var v in vdis.Where(v => v.Footer.DiskType == VhdDiskType.Differencing))
        {
            if (byUuid.TryGetValue(v.Header.ParentUuid, out var parents) && parents.Count == 1)
            {
                var p = parents[0];
                v.ParentId = p.Id;
                if (v.ParentVdiUuid is { } pu && p.VdiUuid is null)
                {
                    p.VdiUuid = pu;
                    p.LvName = XenLvName.VhdPrefix + pu.ToString("D");
                }

                v.ParentLvName = p.LvName;
            }
            else
            {
                v.Findings.Add(new Finding("CARVE_PARENT_NOT_FOUND", Severity.Error,
                    $"{v.LvName}: parent VHD with footer uuid {v.Header.ParentUuid} ({v.Header.ParentUnicodeName}) was not found among the carved heads"));
            }
        }

        return vdis;
    }

    private static CarvedVdi? BuildVdi(int id, CarvePe head, VhdFooter footer, VhdDynamicHeader header, long extent, long totalExtents, List<Finding> findings)
    {
        var blockBytes = (long)header.BlockSizeBytes;
        var spanSectors = header.BitmapSizeSectors + (blockBytes / 512);
        var maxLvBytes = checked(totalExtents * extent);
        var bat = head.HeadBat!;
        long dataEndBytes = 0;
        var bad = 0;
        var seen = new HashSet<uint>();
        var garbage = new List<int>();
        var required = new SortedSet<long> { 0 };
        void Require(long start)
        {
            var end = start + (spanSectors * 512);
            dataEndBytes = Math.Max(dataEndBytes, end);
            for (var le = start / extent; le <= (end - 1) / extent; le++)
            {
                required.Add(le);
            }
        }

        for (var b = 0; b < bat.Length; b++)
        {
            var e = bat[b];
            if (e == VhdBat.Unallocated)
            {
                continue;
            }

            var start = e * 512L;
            var outside = start < (long)header.TableOffsetBytes + header.TableSizeBytes || start + (spanSectors * 512) > maxLvBytes;
            if (outside || !seen.Add(e))
            {
                bad++;
                bat[b] = VhdBat.Unallocated;
                if (outside)
                {
                    garbage.Add(b);
                }

                continue;
            }

            Require(start);
        }

        var inferred = SlotsByElimination(bat, garbage, header, spanSectors, maxLvBytes);
        foreach (var (block, sector) in inferred)
        {
            bat[block] = sector;
            Require(sector * 512L);
        }

        var name = XenLvName.VhdPrefix + footer.Uuid.ToString("D");
        Guid? parentVdi = null;
        if (footer.DiskType == VhdDiskType.Differencing && XenNames.TryParentUuidFromLocator(header.ParentUnicodeName, out var pu, out _))
        {
            parentVdi = pu;
        }

        var metaEnd = VhdBatmapHeader.HeaderOffsetBytes(header) + 512;
        for (var le = 1; le <= (metaEnd - 1) / extent && le * extent < maxLvBytes; le++)
        {
            required.Add(le);
        }

        var physBytes = Math.Max(dataEndBytes, metaEnd) + 512;
        var deflated = (physBytes + extent - 1) / extent;
        var virt = (long)Math.Min(footer.CurrentSizeBytes, VhdFooter.MaxCurrentSizeBytes);
        var inflatedBytes = virt + SmOverheadEmptyBytes + ((virt + (2L << 20) - 1) / (2L << 20) * 4096);
        var inflated = (inflatedBytes + extent - 1) / extent;
        var count = footer.Hidden != 0 || header.MaxTableEntries != 0x100000 ? deflated : Math.Max(deflated, inflated);
        if (count > totalExtents)
        {
            findings.Add(new Finding("CARVE_HEAD_TOO_LARGE", Severity.Warning,
                $"VHD head at PE {head.Pe} ({footer.Uuid}) needs {count} extents, more than the {totalExtents} scanned; ignored",
                head.OffsetBytes, "curr_size", footer.CurrentSizeBytes.ToString(), $"<= {maxLvBytes}"));
            return null;
        }

        var v = new CarvedVdi
        {
            Id = id,
            Head = head,
            Footer = footer,
            Header = header,
            Bat = bat,
            ExtentCount = count,
            LvName = name,
            ParentVdiUuid = parentVdi,
        };
        v.Extents = new CarvedExtent?[count];
        foreach (var le in required.Where(le => le < count))
        {
            v.RequiredExtents.Add(le);
        }

        if (bad > inferred.Count)
        {
            v.Findings.Add(new Finding("CARVE_BAT_ENTRIES_INVALID", Severity.Warning,
                $"{name}: {bad - inferred.Count} BAT entr(y/ies) point into the metadata, past the scanned PVs or at a block already used; treated as unallocated",
                head.OffsetBytes + (long)header.TableOffsetBytes));
        }

        if (inferred.Count > 0)
        {
            v.Findings.Add(new Finding("CARVE_BAT_ENTRIES_INFERRED", Severity.Warning,
                $"{name}: the BAT entry of block {inferred[0].Block} pointed into the metadata or past the PVs; the block is put at sector {inferred[0].Sector}, "
                + "the one slot of tapdisk's block sequence no valid entry claims (elimination, as vhd repair does)",
                head.OffsetBytes + (long)header.TableOffsetBytes));
        }

        return v;
    }

    /// <summary>
    /// tapdisk appends every new block at the end of the VHD, data 4 KiB aligned (bitmap, then data; 4,104 sectors per
    /// 2 MiB block with the alignment gap, xenserver-lvhd.md 2.5), so allocated blocks fill consecutive slots from the
    /// first one after the BAT. When the valid entries sit on those slots and leave exactly one free, the one garbage
    /// entry's block is there. Empty otherwise: several garbage entries (which block is in which free slot is not
    /// proven), entries that do not fit that layout (another tool wrote the VHD), or nothing garbage.
    /// </summary>
    private static List<(int Block, uint Sector)> SlotsByElimination(uint[] bat, List<int> garbage, VhdDynamicHeader header, long spanSectors, long maxLvBytes)
    {
        var valid = bat.Where(e => e != VhdBat.Unallocated).Select(e => (long)e).Order().ToList();
        if (garbage.Count != 1 || valid.Count == 0)
        {
            return [];
        }

        var stride = (spanSectors + 7) / 8 * 8;
        var batEndSector = ((long)header.TableOffsetBytes + header.TableSizeBytes + 511) / 512;
        var origin = valid[0] - ((valid[0] - batEndSector) / stride * stride);
        var n = valid.Count + garbage.Count;
        var taken = new HashSet<long>();
        foreach (var e in valid)
        {
            if ((e - origin) % stride != 0 || (e - origin) / stride >= n || !taken.Add((e - origin) / stride))
            {
                return [];
            }
        }

        var free = Enumerable.Range(0, n).Where(k => !taken.Contains(k)).Select(k => origin + (k * stride)).ToList();
        return free is [var slot] && ((slot + spanSectors) * 512) <= maxLvBytes && slot <= uint.MaxValue ? [(garbage[0], (uint)slot)] : [];
    }
}
