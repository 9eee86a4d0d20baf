// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Carving;

/// <summary>
/// Global assignment of logical extents (VDI, LE) to physical extents, each PE to at most one LV.
/// <list type="number">
/// <item>Candidates with content evidence: the head (LE 0), the batmap extent (LE 1: <c>tdbatmap</c> whose bits fit
/// the BAT and whose checksum holds), the tail (footer with the same uuid at extent end - 512), and every extent
/// whose bitmap sectors the BAT predicts (positions on the 4 KiB grid, full blocks all 0xFF per the batmap).
/// At most <see cref="CarveOptions.MaxCandidatesPerExtent"/> per extent are offered, nearest the allocator's hint or choice.</item>
/// <item>Signatures best-first over all VDIs at once (a priority queue, O(E log E)): the strongest remaining
/// (extent, PE) pair is taken if both are free; placing LE j at PE p raises LE j±1 at PE p±1 (lvextend takes
/// consecutive free extents).</item>
/// <item>Bitmap extents by an allocator sweep (<c>Sweep</c>): content-unique ones first, then LE by LE over all VDIs,
/// the fitting PEs in increasing order, each to the slot lvm2 would have served (a run it continues, then the slot with
/// no later PE left, then the one whose extents so far end first), within the window an increasing path through the
/// LV's placed extents allows. Lookalikes (the same bitmap sectors in LE j of many VDIs) are told apart by order
/// only: still guesses for <see cref="Calibrate"/>. What the sweep leaves goes best-first.</item>
/// <item>Extents without content evidence (inflated space past the data, extents holding only the end of a
/// block) are placed by LVM's allocator rule: the free PEs between the placed neighbours, lowest first; an
/// exact fit is evidence, slack is reported as ambiguity.</item>
/// <item>Confidence against the rivals (<see cref="Calibrate"/>): sure only when the content tells the placement apart
/// from every other PE and every other extent; otherwise a guess, reported with the rival PEs.</item>
/// </list>
/// </summary>
public static class CarveSolver
{
    private const double HeadScore = 1.0;
    private const double BatmapScore = 0.85;
    private const double TailScore = 0.8;
    private const double ContentScore = 0.5;
    private const double RunBonus = 0.3;
    private const double StraddleBonus = 0.35;
    private const double Ext4MatchBonus = 0.4;

    // Expected bitmap observations: position in bits 0-9, bit 14 = full/partial known, bit 15 = full.
    private const int PositionMask = 0x3FFF;
    private const int KnownFlag = 0x4000;

    private sealed class Slot(CarvedVdi vdi, long le)
    {
        public CarvedVdi Vdi { get; } = vdi;
        public long Le { get; } = le;
        public List<ushort>? Expected { get; set; }
        public Dictionary<long, Candidate> Candidates { get; } = [];

        /// <summary>Phase 2: every free PE whose bitmap sectors fit <see cref="Expected"/>, in PE order; offered in the sweep.</summary>
        public List<CarvePe>? Fitting { get; set; }

        public bool FullKnown { get; set; }
    }

    /// <summary>A slot in the allocator sweep: where its extents so far put it (the lower anchor), and its free in-order PEs.</summary>
    private sealed class SweepSlot(Slot slot, long anchor, long hint, List<long> tier)
    {
        public Slot Slot { get; } = slot;
        public long Anchor { get; } = anchor;
        public long Hint { get; } = hint;
        public List<long> Tier { get; } = tier;

        /// <summary>Index of the last PE of <see cref="Tier"/> not known to be taken.</summary>
        public int Last { get; set; } = tier.Count - 1;
    }

    /// <summary>
    /// One (slot, PE) pair. <see cref="Content"/> is what the PE's own bytes say for this slot (signatures, bitmap
    /// sectors, ext4, guest); <see cref="Score"/> adds what placed neighbours say (a run, a straddling block), which is
    /// only as good as those neighbours. <see cref="BaseScore"/>/<see cref="BaseEvidence"/> are the offer before any of
    /// the additions, so a re-score starts from them. <see cref="Before"/>/<see cref="After"/>: what the placed LE - 1 and
    /// LE + 1 added (run, straddling block).
    /// </summary>
    private readonly record struct Candidate(double Score, double Content, double Before, double After, double BaseScore, string BaseEvidence, string Evidence);

    /// <summary>Widest allocator gap whose other PEs' owners are checked when a gap fill is calibrated.</summary>
    private const long MaxGapPesChecked = 4096;

    internal static long Key(int source, long pe) => ((long)source << 40) | pe;

    /// <summary>
    /// Places every VDI's logical extents. <paramref name="guestEvidence"/> adds score (and a reason) to a candidate
    /// (VDI id, LE, PE key) from the guest's own structure, read by the caller through a previous solve.
    /// <paramref name="claimed"/> (a current VG's PEs) and <paramref name="reserved"/> (carved raw VDIs) are never used;
    /// a claimed PE inside an allocator gap also means the gap may have held the missing extents.
    /// </summary>
    public static void Solve(IReadOnlyList<CarvePe[]> pes, IReadOnlyList<CarvedVdi> vdis, CarveOptions options, List<Finding> findings,
        CarvePe? mgt, CancellationToken cancel, IReadOnlyDictionary<(int Vdi, long Le, long Key), (double Delta, string Evidence)>? guestEvidence = null,
        IReadOnlySet<long>? claimed = null, IReadOnlySet<long>? reserved = null)
    {
        var extent = options.ExtentSizeBytes;
        var owner = new Dictionary<long, (CarvedVdi? Vdi, long Le)>();
        if (mgt is not null)
        {
            owner[Key(mgt.Source, mgt.Pe)] = (null, 0);
        }

        // PEs of LVs in valid current metadata (a re-created SR) are theirs: never candidates for a carved extent.
        claimed ??= new HashSet<long>();
        foreach (var k in claimed.Concat(reserved ?? new HashSet<long>()))
        {
            owner[k] = (null, 0);
        }

        var byPosition = new Dictionary<int, List<CarvePe>>();
        var batmaps = new List<CarvePe>();
        var tails = new Dictionary<Guid, List<CarvePe>>();
        foreach (var p in pes.SelectMany(x => x))
        {
            foreach (var obs in p.Bitmaps)
            {
                var pos = obs & ~CarveScanner.FullFlag;
                if (!byPosition.TryGetValue(pos, out var list))
                {
                    byPosition[pos] = list = [];
                }

                list.Add(p);
            }

            if ((p.Kind & CarvePeKind.Batmap) != 0)
            {
                batmaps.Add(p);
            }

            if (p.Tail is { } t)
            {
                if (!tails.TryGetValue(t.Uuid, out var list))
                {
                    tails[t.Uuid] = list = [];
                }

                list.Add(p);
            }
        }

        var slots = new Dictionary<(int Vdi, long Le), Slot>();
        var queue = new PriorityQueue<(Slot Slot, int Source, long Pe, double Score, string Evidence), (double, long)>();

        // Phase 1: heads, batmap extents, tails (signatures that name their VDI or fit only its BAT).
        foreach (var v in vdis)
        {
            cancel.ThrowIfCancellationRequested();
            var expected = ExpectedBitmaps(v, extent, null);
            for (long le = 0; le < v.ExtentCount; le++)
            {
                var slot = new Slot(v, le) { Expected = expected.GetValueOrDefault(le) };
                slots[(v.Id, le)] = slot;
                if (le == 0)
                {
                    Offer(slot, v.Head, HeadScore, "VHD head (conectix @0, cxsparse @0x200) with this footer uuid");
                }
                else if (le == 1 && v.RequiredExtents.Contains(1))
                {
                    foreach (var b in batmaps.Where(b => BatmapFits(v, b) && Fits(slot.Expected, b, out _)))
                    {
                        Offer(slot, b, BatmapScore, "tdbatmap @0x600: bits fit the BAT, checksum valid, bitmap sectors where the BAT puts them");
                    }
                }

                if (le == v.ExtentCount - 1 && tails.TryGetValue(v.Footer.Uuid, out var tailPes))
                {
                    foreach (var t in tailPes.Where(t => Fits(slot.Expected, t, out _)))
                    {
                        Offer(slot, t, TailScore, "VHD footer with this uuid at extent end - 512 (LV end)");
                    }
                }

                Trim(slot, v.Head.Pe + le, options.MaxCandidatesPerExtent);
                Enqueue(slot);
            }
        }

        Drain();

        // Phase 2: every other extent with bitmap sectors, now with full/partial per block from the placed batmap.
        var open = new List<Slot>();
        foreach (var v in vdis)
        {
            cancel.ThrowIfCancellationRequested();
            var full = v.Extents.Length > 1 && v.Extents[1] is { } b1 ? FullBlocks(pes[b1.Source][b1.Pe]) : KnownFullBlocks(v, batmaps);
            var expected = ExpectedBitmaps(v, extent, full);
            for (long le = 1; le < v.ExtentCount; le++)
            {
                var slot = slots[(v.Id, le)];
                if (v.Extents[le] is not null || expected.GetValueOrDefault(le) is not { Count: > 0 } exp
                    || !byPosition.TryGetValue(exp[0] & PositionMask, out var cands))
                {
                    continue;
                }

                slot.Expected = exp;
                // Offered in the sweep, where the PEs the allocator could have used for this LE are known (byPosition is in PE order).
                slot.Fitting = cands.Where(p => !owner.ContainsKey(Key(p.Source, p.Pe)) && Fits(exp, p, out var flagsAgree) && flagsAgree).ToList();
                if (slot.Fitting.Count > options.MaxFittingPerExtent)
                {
                    // Bounded memory on SRs of many fully written, identically laid out VDIs (LE j's bitmap sectors repeat
                    // every 512 LEs of every VDI): keep the PEs nearest the allocator's hint, in PE order again.
                    var hint = v.Head.Pe + le;
                    slot.Fitting = slot.Fitting.OrderBy(p => Math.Abs(p.Pe - hint)).Take(options.MaxFittingPerExtent)
                        .OrderBy(p => Key(p.Source, p.Pe)).ToList();
                }
                slot.FullKnown = full is not null;
                open.Add(slot);
            }
        }

        Sweep(open);
        foreach (var slot in open.Where(s => s.Vdi.Extents[s.Le] is null))
        {
            Enqueue(slot);
        }

        Drain();

        // Phase 3: extents holding only the end of a block that starts in the placed extent before them (no bitmap
        // sector of their own): the written sectors at the start of the candidate must end where the block ends.
        foreach (var v in vdis)
        {
            cancel.ThrowIfCancellationRequested();
            var full = v.Extents.Length > 1 && v.Extents[1] is { } b1 ? FullBlocks(pes[b1.Source][b1.Pe]) : KnownFullBlocks(v, batmaps);
            foreach (var le in v.RequiredExtents)
            {
                if (le == 0 || v.Extents[le] is not null || v.Extents[le - 1] is not { } prev
                    || Crossing(v, le, extent, full, pes[prev.Source][prev.Pe]) is not { } crossing)
                {
                    continue;
                }

                var slot = slots[(v.Id, le)];
                var fitting = pes[prev.Source].Where(p => !owner.ContainsKey(Key(p.Source, p.Pe)) && p.IsQuiet && p.Bitmaps.Count == 0
                    && ContinuationFits(p, crossing.EndInNext, crossing.Written)).ToList();
                foreach (var p in fitting)
                {
                    Offer(slot, p, ContentScore - (0.01 * Math.Min(fitting.Count - 1, 5)),
                        $"written sectors at the start end at 0x{crossing.EndInNext:X}, where block {crossing.Block} (bitmap in LE {le - 1}) ends ({fitting.Count} PE(s) fit)");
                }

                Trim(slot, v.Head.Pe + le, options.MaxCandidatesPerExtent);
                Enqueue(slot);
            }
        }

        Drain();

        void Offer(Slot slot, CarvePe p, double baseScore, string baseEvidence)
        {
            var v = slot.Vdi;
            var (score, evidence) = (baseScore, baseEvidence);
            double content = 0, before = 0, after = 0;
            foreach (var d in (ReadOnlySpan<int>)[-1, 1])
            {
                var n = slot.Le + d;
                if (n >= 0 && n < v.ExtentCount && v.Extents[n] is { } ne && ne.Source == p.Source && ne.Pe == p.Pe + d)
                {
                    score += RunBonus;
                    (d < 0 ? ref before : ref after) += RunBonus;
                    evidence += $"; next to LE {n} at PE {ne.Pe} (one lvextend run)";
                    break;
                }
            }

            foreach (var d in (ReadOnlySpan<int>)[-1, 1])
            {
                var n = slot.Le + d;
                if (n >= 0 && n < v.ExtentCount && v.Extents[n] is { } ne && slots.TryGetValue((v.Id, Math.Min(n, slot.Le)), out var lower))
                {
                    var (first, second) = d < 0 ? (pes[ne.Source][ne.Pe], p) : (p, pes[ne.Source][ne.Pe]);
                    if (Straddle(lower, first, second, extent) is { } agree)
                    {
                        score += StraddleBonus * agree;
                        (d < 0 ? ref before : ref after) += StraddleBonus * agree;
                        evidence += $"; the block crossing into LE {Math.Max(n, slot.Le)} has its bitmap agree with the data there ({agree:P0})";
                    }
                }
            }

            if (Ext4Agreement(v, slot.Le, p, extent) is { } fs && !evidence.Contains(fs.Evidence, StringComparison.Ordinal))
            {
                score += fs.Delta;
                content += fs.Delta;
                evidence += "; " + fs.Evidence;
            }

            var k = Key(p.Source, p.Pe);
            if (guestEvidence is not null && guestEvidence.TryGetValue((v.Id, slot.Le, k), out var guest) && !evidence.Contains(guest.Evidence, StringComparison.Ordinal))
            {
                score += guest.Delta;
                content += guest.Delta;
                evidence += "; " + guest.Evidence;
            }

            if (!slot.Candidates.TryGetValue(k, out var old) || old.Score < score)
            {
                slot.Candidates[k] = new Candidate(score, baseScore + content, before, after, baseScore, baseEvidence, evidence);
            }
        }

        void Enqueue(Slot slot)
        {
            foreach (var (k, c) in slot.Candidates)
            {
                var pe = k & ((1L << 40) - 1);
                queue.Enqueue((slot, (int)(k >> 40), pe, c.Score, c.Evidence), (-c.Score, Math.Abs(pe - (slot.Vdi.Head.Pe + slot.Le))));
            }
        }

        void Drain()
        {
            while (queue.TryDequeue(out var item, out _))
            {
                var (slot, source, pe, score, evidence) = item;
                var v = slot.Vdi;
                var key = Key(source, pe);
                if (v.Extents[slot.Le] is not null || owner.ContainsKey(key))
                {
                    continue;
                }

                Place(slot, source, pe, score, evidence);
            }
        }

        void Place(Slot slot, int source, long pe, double score, string evidence)
        {
            var v = slot.Vdi;
            // Provisional: Calibrate sets confidence and alternatives once every extent is placed.
            v.Extents[slot.Le] = new CarvedExtent(slot.Le, source, pe, slot.Le == 0 ? 1.0 : Confidence(score), [evidence]);
            owner[Key(source, pe)] = (v, slot.Le);
            foreach (var d in (ReadOnlySpan<int>)[-1, 1])
            {
                var nle = slot.Le + d;
                var npe = pe + d;
                if (nle < 0 || nle >= v.ExtentCount || npe < 0 || v.Extents[nle] is not null || !slots.TryGetValue((v.Id, nle), out var ns))
                {
                    continue;
                }

                // Re-score the neighbour's candidates now that this extent is fixed (run and straddling block).
                foreach (var (ck, c) in ns.Candidates.ToList())
                {
                    if (owner.ContainsKey(ck) || c.Score >= HeadScore)
                    {
                        continue;
                    }

                    var cp = pes[(int)(ck >> 40)][ck & ((1L << 40) - 1)];
                    var before = ns.Candidates[ck].Score;
                    ns.Candidates.Remove(ck);
                    Offer(ns, cp, c.BaseScore, c.BaseEvidence);
                    if (!ns.Candidates.TryGetValue(ck, out var now) || now.Score <= before)
                    {
                        ns.Candidates[ck] = c;
                        continue;
                    }

                    queue.Enqueue((ns, cp.Source, cp.Pe, now.Score, now.Evidence), (-now.Score, Math.Abs(cp.Pe - (v.Head.Pe + nle))));
                }
            }
        }

        void OfferFitting(Slot slot, IEnumerable<CarvePe> chosen)
        {
            var exp = slot.Expected!;
            var n = slot.Fitting!.Count;
            foreach (var p in chosen)
            {
                Offer(slot, p, BitmapScore(slot, p), $"{exp.Count} bitmap sector(s) at the offsets the BAT predicts" + (slot.FullKnown ? ", full/partial as the batmap says" : "")
                    + $" ({n} PE(s) fit)");
            }
        }

        // Among lookalikes (extents whose bytes fit several slots equally), lvm2's allocator decides: lvcreate/lvextend
        // take free PEs in increasing order, in runs of consecutive PEs, each PE for one LV. Slots are taken LE by LE
        // (LE j - 1 of every VDI is placed before LE j, so it bounds LE j from below); within one LE, the candidate PEs
        // in increasing order, each to the slot that the allocator would have served: the one it continues a run of,
        // then one with no later candidate left, then the one whose extents so far end earliest (first come, first
        // served: a convex cost on the gap, so two LVs' lookalikes never cross). Order is a preference: candidates out of
        // order are left to the best-first pass. O(C log C) over the C candidates.
        void Sweep(List<Slot> open)
        {
            const long peMask = (1L << 40) - 1;
            var margin = options.AmbiguityMargin;

            // Content-unique extents first (one PE fits, no other slot wants it): they bound their VDI's other LEs.
            var wanted = new Dictionary<long, int>();
            foreach (var p in open.SelectMany(s => s.Fitting!))
            {
                var k = Key(p.Source, p.Pe);
                wanted[k] = wanted.GetValueOrDefault(k) + 1;
            }

            foreach (var s in open.Where(s => s.Fitting!.Count == 1))
            {
                var p = s.Fitting![0];
                if (wanted[Key(p.Source, p.Pe)] == 1 && s.Vdi.Extents[s.Le] is null && !owner.ContainsKey(Key(p.Source, p.Pe)))
                {
                    OfferFitting(s, s.Fitting);
                    var c = s.Candidates[Key(p.Source, p.Pe)];
                    Place(s, p.Source, p.Pe, c.Score, c.Evidence);
                }
            }

            var bounds = open.Select(s => s.Vdi).Distinct().ToDictionary(v => v.Id, PlacedNeighbours);
            var windows = open.Select(s => s.Vdi).Distinct().ToDictionary(v => v.Id, Windows);
            var swept = new Dictionary<int, long>();
            foreach (var group in open.GroupBy(s => s.Le).OrderBy(g => g.Key))
            {
                cancel.ThrowIfCancellationRequested();
                var le = group.Key;
                var entries = new List<(long Key, SweepSlot Slot)>();
                foreach (var s in group)
                {
                    var v = s.Vdi;
                    if (v.Extents[le] is not null)
                    {
                        continue;
                    }

                    var (prev, next) = bounds[v.Id];
                    var lower = Math.Max(prev[le], swept.GetValueOrDefault(v.Id, -1));
                    var (hint, inOrder) = OrderHint(v, le, lower, next[le]);
                    var free = s.Fitting!.Select(p => (Key: Key(p.Source, p.Pe), Content: Content(s, p))).Where(c => !owner.ContainsKey(c.Key)).ToList();
                    if (free.Count == 0)
                    {
                        Prepare(s, hint, null);
                        continue;
                    }

                    var best = free.Max(c => c.Content);
                    var (wlo, whi) = (windows[v.Id].Lo[le], windows[v.Id].Hi[le]);
                    var tier = free.Where(c => c.Content >= best - margin && inOrder(c.Key)).Select(c => c.Key).ToList();
                    if (wlo <= whi && tier.Any(k => k >= wlo && k <= whi))
                    {
                        tier = tier.Where(k => k >= wlo && k <= whi).ToList();
                    }

                    var anchor = lower >= 0 && v.Extents[lower] is { } a ? Key(a.Source, a.Pe + (le - lower)) : -1;
                    var state = new SweepSlot(s, anchor, hint, tier);
                    entries.AddRange(tier.Select(k => (k, state)));
                }

                entries.Sort((x, y) => x.Key.CompareTo(y.Key));
                for (var i = 0; i < entries.Count;)
                {
                    var k = entries[i].Key;
                    var end = i;
                    while (end < entries.Count && entries[end].Key == k)
                    {
                        end++;
                    }

                    SweepSlot? chosen = null;
                    (int Run, int Urgent, long Lower, long Head) rank = default;
                    for (var e = i; e < end && !owner.ContainsKey(k); e++)
                    {
                        var st = entries[e].Slot;
                        var v = st.Slot.Vdi;
                        if (v.Extents[le] is not null)
                        {
                            continue;
                        }

                        var run = (le > 0 && v.Extents[le - 1] is { } b && Key(b.Source, b.Pe + 1) == k)
                            || (le + 1 < v.ExtentCount && v.Extents[le + 1] is { } n && Key(n.Source, n.Pe - 1) == k);
                        while (st.Last >= 0 && owner.ContainsKey(st.Tier[st.Last]))
                        {
                            st.Last--;
                        }

                        var r = (run ? 1 : 0, st.Last < 0 || st.Tier[st.Last] <= k ? 1 : 0, -st.Anchor, -v.Head.Pe);
                        if (chosen is null || r.CompareTo(rank) > 0)
                        {
                            (chosen, rank) = (st, r);
                        }
                    }

                    if (chosen is not null)
                    {
                        var c = Prepare(chosen.Slot, k & peMask, k)!.Value;
                        Place(chosen.Slot, (int)(k >> 40), k & peMask, c.Score, c.Evidence);
                        swept[chosen.Slot.Vdi.Id] = le;
                    }

                    i = end;
                }

                foreach (var (_, st) in entries.Where(x => x.Slot.Slot.Vdi.Extents[le] is null && x.Slot.Slot.Candidates.Count == 0))
                {
                    Prepare(st.Slot, st.Hint, null);
                }
            }
        }

        // Per LE of v, the PEs (as keys) an increasing path through its placed extents and its slots' fitting PEs can use:
        // the lowest reachable from below and the highest reachable from above (a slot without fitting PEs takes any PE).
        // A candidate outside its window leaves a later or earlier LE of the same LV no PE in order (arc consistency on the
        // chain); O(LEs log C) per VDI.
        (long[] Lo, long[] Hi) Windows(CarvedVdi v)
        {
            var lo = new long[v.ExtentCount];
            var hi = new long[v.ExtentCount];
            var last = long.MinValue / 2;
            for (long le = 0; le < v.ExtentCount; le++)
            {
                lo[le] = v.Extents[le] is { } e ? Key(e.Source, e.Pe)
                    : slots.TryGetValue((v.Id, le), out var s) && s.Fitting is { Count: > 0 } f && FirstAbove(f, last) is { } k ? k : last + 1;
                last = lo[le];
            }

            last = long.MaxValue / 2;
            for (var le = v.ExtentCount - 1; le >= 0; le--)
            {
                hi[le] = v.Extents[le] is { } e ? Key(e.Source, e.Pe)
                    : slots.TryGetValue((v.Id, le), out var s) && s.Fitting is { Count: > 0 } f && LastBelow(f, last) is { } k ? k : last - 1;
                last = hi[le];
            }

            return (lo, hi);
        }

        // What the PE's own bytes say for the slot (the score Offer gives before any neighbour's run or straddling block).
        double Content(Slot slot, CarvePe p)
        {
            var content = BitmapScore(slot, p);
            if (p.Ext4.Count > 0 && Ext4Agreement(slot.Vdi, slot.Le, p, extent) is { } fs)
            {
                content += fs.Delta;
            }

            if (guestEvidence is not null && guestEvidence.TryGetValue((slot.Vdi.Id, slot.Le, Key(p.Source, p.Pe)), out var guest))
            {
                content += guest.Delta;
            }

            return content;
        }

        // Offers the slot the fitting PEs nearest pe (at most MaxCandidatesPerExtent, whatever their state: the rivals
        // Calibrate weighs), the chosen one and any with ext4 or guest evidence; returns the chosen one's candidate.
        Candidate? Prepare(Slot slot, long pe, long? chosen)
        {
            var f = slot.Fitting!;
            var pick = f.OrderBy(p => Math.Abs(p.Pe - pe)).Take(options.MaxCandidatesPerExtent)
                .Concat(f.Where(p => p.Ext4.Count > 0 || Key(p.Source, p.Pe) == chosen
                    || (guestEvidence?.ContainsKey((slot.Vdi.Id, slot.Le, Key(p.Source, p.Pe))) ?? false)));
            OfferFitting(slot, pick.Distinct());
            return chosen is { } k ? slot.Candidates[k] : null;
        }

        FillGaps(pes, vdis, owner, claimed, findings);
        Calibrate(vdis, slots, owner, options.AmbiguityMargin);
    }

    /// <summary>
    /// Final confidence of every placement, decided against its competitors rather than from its own score. A content
    /// placement is certain when no competitor comes within <paramref name="margin"/> of what its bytes say for the
    /// slot: no other PE fits the extent as well (unless a certain placement of another extent holds that PE), and no
    /// other extent fits the PE as well (unless that extent is certainly placed elsewhere). A run or a straddling block
    /// never lifts a placement over an equal rival: it ties to a neighbour that may be a guess itself, and a guess
    /// chained along a run made whole runs of another VDI look certain (bench/carve). Least fixpoint: heads are certain,
    /// and each certain placement can only dismiss rivals of others, so a worklist settles it in O(candidates).
    /// Placements left with rivals keep their PE (the allocator sweep's choice) but are reported: ambiguous with
    /// the rival PEs, confidence under 0.5. Allocator-gap fills are certain only between certain neighbours.
    /// </summary>
    private static void Calibrate(IReadOnlyList<CarvedVdi> vdis, Dictionary<(int Vdi, long Le), Slot> slots,
        Dictionary<long, (CarvedVdi? Vdi, long Le)> owner, double margin)
    {
        const long peMask = (1L << 40) - 1;
        var byPe = new Dictionary<long, List<Slot>>();
        foreach (var slot in slots.Values)
        {
            foreach (var k in slot.Candidates.Keys)
            {
                if (!byPe.TryGetValue(k, out var list))
                {
                    byPe[k] = list = [];
                }

                list.Add(slot);
            }
        }

        var certain = new HashSet<Slot>();
        Candidate? Mine(Slot s) => s.Vdi.Extents[s.Le] is { } e && s.Candidates.TryGetValue(Key(e.Source, e.Pe), out var c) ? c : null;
        bool HeldElsewhere(Slot s, long k) => owner.TryGetValue(k, out var o) && (o.Vdi is null
            || (slots.TryGetValue((o.Vdi.Id, o.Le), out var t) && t != s && certain.Contains(t)));

        // Rival PEs for the slot, and rival extents (VDI, LE) for its PE, that nothing certain explains away.
        (List<long> Pes, List<Slot> Extents) Rivals(Slot s, Candidate mine)
        {
            var e = s.Vdi.Extents[s.Le]!;
            var key = Key(e.Source, e.Pe);
            // The one run taken as evidence: LE 1 right after its head. SM creates a VHD LV with one lvcreate of at least
            // two extents (xenserver-lvhd.md 2.10), so head and batmap extent are one allocation, split only if lvm2 found
            // a one-extent free area first; a rival batmap extent (same BAT and batmap) sits next to its own head.
            if (s.Le == 1 && s.Vdi.Head is { } h && h.Source == e.Source && h.Pe + 1 == e.Pe)
            {
                return ([], []);
            }

            var pes = s.Candidates.Where(c => c.Key != key && c.Value.Content >= mine.Content - margin && !HeldElsewhere(s, c.Key))
                .Select(c => c.Key & peMask).Order().ToList();
            var extents = byPe.GetValueOrDefault(key, []).Where(t => t != s && t.Candidates[key].Content >= mine.Content - margin
                && !(certain.Contains(t) && t.Vdi.Extents[t.Le] is { } te && Key(te.Source, te.Pe) != key)).ToList();
            return (pes, extents);
        }

        var work = new Queue<Slot>(slots.Values.Where(s => Mine(s) is not null));
        while (work.TryDequeue(out var s))
        {
            if (certain.Contains(s) || Mine(s) is not { } mine || (s.Le != 0 && Rivals(s, mine) is not { Pes.Count: 0, Extents.Count: 0 }))
            {
                continue;
            }

            certain.Add(s);
            var e = s.Vdi.Extents[s.Le]!;
            // Slots that had this PE as a rival, and slots placed on PEs this slot competed for, may now be certain.
            foreach (var t in byPe.GetValueOrDefault(Key(e.Source, e.Pe), []))
            {
                work.Enqueue(t);
            }

            foreach (var k in s.Candidates.Keys)
            {
                if (owner.TryGetValue(k, out var o) && o.Vdi is not null && slots.TryGetValue((o.Vdi.Id, o.Le), out var t))
                {
                    work.Enqueue(t);
                }
            }
        }

        foreach (var v in vdis)
        {
            for (long le = 0; le < v.ExtentCount; le++)
            {
                if (v.Extents[le] is not { } e || !slots.TryGetValue((v.Id, le), out var s))
                {
                    continue;
                }

                if (Mine(s) is not { } mine)
                {
                    // Allocator-gap fill: only as sure as the content placements that bracket it, and as the placements
                    // that hold the gap's other PEs (an "exact" gap counts the PEs others took; a guess may have taken its PE).
                    if (e.Confidence >= 0.5 && !(Bracket(v, le, -1) && Bracket(v, le, 1)))
                    {
                        v.Extents[le] = e with { Confidence = 0.4, Evidence = [.. e.Evidence, "the extents that bracket this gap are not certain themselves"] };
                    }
                    else if (e.Confidence >= 0.5 && GuessInGap(v, le, e) is { } guessed)
                    {
                        v.Extents[le] = e with
                        {
                            Confidence = 0.4,
                            Evidence = [.. e.Evidence, $"PE {guessed.Pe} inside the gap is held by LE {guessed.Le} of {guessed.Lv}, itself not certainly placed"],
                        };
                    }

                    continue;
                }

                if (certain.Contains(s))
                {
                    // What a neighbour adds (run, straddling block) counts once that neighbour is certain too: two signals.
                    var context = (Certain(v, le - 1) ? mine.Before : 0) + (Certain(v, le + 1) ? mine.After : 0);
                    v.Extents[le] = e with { Confidence = s.Le == 0 ? 1.0 : Confidence(mine.Content + context), Evidence = [mine.Evidence], AlternativePes = null };
                    continue;
                }

                var (pes, extents) = Rivals(s, mine);
                var evidence = new List<string> { mine.Evidence };
                if (pes.Count > 0)
                {
                    evidence.Add($"ambiguous: PE(s) {string.Join(", ", pes)} fit this extent as well (possibly placed in another LV)");
                }

                if (extents.Count > 0)
                {
                    evidence.Add($"contested: this PE fits as well " + string.Join(", ", extents.Take(8).Select(t => $"LE {t.Le} of {t.Vdi.LvName}"))
                        + (extents.Count > 8 ? $" and {extents.Count - 8} more" : "") + " (not certainly placed elsewhere)");
                }

                // A guess that continues a run from a certain neighbour is right far more often than one without (105 of 107
                // against 37 of 1,163 in bench/carve/README.md): 0.45 against 0.3, both under 0.5.
                var backed = (Certain(v, le - 1) && mine.Before > 0) || (Certain(v, le + 1) && mine.After > 0);
                v.Extents[le] = e with
                {
                    Confidence = backed ? 0.45 : 0.3,
                    Evidence = evidence,
                    AlternativePes = pes.Count > 0 ? pes : null,
                };
            }
        }

        bool Certain(CarvedVdi v, long le) => le >= 0 && le < v.ExtentCount && slots.TryGetValue((v.Id, le), out var ns) && certain.Contains(ns);

        // A PE between the content placements that bracket gap fill e, held by another LV's placement that is not certain
        // (at most MaxGapPesChecked PEs are looked at: a wider gap is left as the gap rule placed it).
        (long Pe, long Le, string Lv)? GuessInGap(CarvedVdi v, long le, CarvedExtent e)
        {
            long lower = -1, upper = -1;
            for (var i = le - 1; i >= 0 && lower < 0; i--)
            {
                lower = v.Extents[i] is { } n && n.Source == e.Source && slots.TryGetValue((v.Id, i), out var ns) && ns.Candidates.ContainsKey(Key(n.Source, n.Pe)) ? n.Pe : -1;
            }

            for (var i = le + 1; i < v.ExtentCount && upper < 0; i++)
            {
                upper = v.Extents[i] is { } n && n.Source == e.Source && slots.TryGetValue((v.Id, i), out var ns) && ns.Candidates.ContainsKey(Key(n.Source, n.Pe)) ? n.Pe : -1;
            }

            if (lower < 0 || upper < 0 || upper - lower > MaxGapPesChecked)
            {
                return null;
            }

            for (var p = lower + 1; p < upper; p++)
            {
                if (owner.TryGetValue(Key(e.Source, p), out var o) && o.Vdi is { } ov && ov != v
                    && !(slots.TryGetValue((ov.Id, o.Le), out var os) && certain.Contains(os)))
                {
                    return (p, o.Le, ov.LvName);
                }
            }

            return null;
        }

        // The nearest content placement in direction d is certain (a gap at the LV's end is bracketed by its end).
        bool Bracket(CarvedVdi v, long le, int d)
        {
            for (var i = le + d; i >= 0 && i < v.ExtentCount; i += d)
            {
                if (v.Extents[i] is { } n && slots.TryGetValue((v.Id, i), out var ns) && ns.Candidates.ContainsKey(Key(n.Source, n.Pe)))
                {
                    return certain.Contains(ns);
                }
            }

            return d > 0;
        }
    }

    /// <summary>
    /// The block whose bitmap is the last one in <paramref name="lower"/>'s extent continues into the next extent:
    /// its bitmap says which of those sectors the guest wrote. Share of the next extent's non-zero sectors in that
    /// range whose bit is set (null when the range holds too few non-zero sectors to tell).
    /// </summary>
    private static double? Straddle(Slot lower, CarvePe first, CarvePe second, long extent)
    {
        if (lower.Expected is not { Count: > 0 } exp || second.NonZeroSectors.Length == 0)
        {
            return null;
        }

        var pos = exp[^1] & PositionMask;
        var idx = first.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
        if (idx < 0)
        {
            return null;
        }

        var bitmap = first.BitmapSectors[idx];
        var dataStart = CarveScanner.BitmapPhaseBytes + ((long)pos * CarveScanner.GridBytes) + 512;
        int agree = 0, disagree = 0;
        for (var i = 0; i < 4096; i++)
        {
            var at = dataStart + (i * 512L) - extent;
            if (at < 0)
            {
                continue;
            }

            var s = (int)(at / 512);
            if (s >= second.NonZeroSectors.Length * 64)
            {
                break;
            }

            if ((second.NonZeroSectors[s >> 6] & (1UL << (s & 63))) == 0)
            {
                continue;
            }

            if ((bitmap[i / 8] & (0x80 >> (i % 8))) != 0)
            {
                agree++;
            }
            else
            {
                disagree++;
            }
        }

        // Only a partially written block can tell extents apart: a full bitmap agrees with anything.
        if (agree + disagree < 8 || !bitmap.AsSpan().ContainsAnyExcept((byte)0xFF))
        {
            return null;
        }

        var share = (double)agree / (agree + disagree);
        return share >= 0.9 ? share : share - 1;
    }

    /// <summary>
    /// ext4 superblocks in <paramref name="p"/> checked against <paramref name="v"/>'s BAT: a superblock of group g
    /// sits at guest offset 1024 (g = 0) or (s_first_data_block + g x s_blocks_per_group) x block size (Linux
    /// fs/ext4/super.c, ext4_group_first_block_no); the BAT says which LV byte holds that guest offset. The same
    /// extent and offset is a match; a superblock where the BAT puts other guest data (a stale one of a deleted
    /// VDI, another VDI's file system) contradicts the candidate. Null when the PE holds no superblock.
    /// </summary>
    private static (double Delta, string Evidence)? Ext4Agreement(CarvedVdi v, long le, CarvePe p, long extent)
    {
        if (p.Ext4.Count == 0)
        {
            return null;
        }

        var blockBytes = (long)v.Header.BlockSizeBytes;
        var bitmapBytes = v.Header.BitmapSizeSectors * 512;
        var matches = new List<string>();
        var contradictions = new List<string>();
        foreach (var h in p.Ext4)
        {
            long guest;
            try
            {
                guest = h.GroupNumber == 0 ? 1024 : checked((h.FirstDataBlock + ((long)h.GroupNumber * h.BlocksPerGroup)) * h.BlockSizeBytes);
            }
            catch (OverflowException)
            {
                continue;
            }

            var block = guest / blockBytes;
            long? lvByte = block < v.Bat.Length && v.Bat[block] != VhdBat.Unallocated ? (v.Bat[block] * 512L) + bitmapBytes + (guest % blockBytes) : null;
            var what = $"ext4 superblock of group {h.GroupNumber} (fs {h.FsUuid}) @0x{h.OffsetInExtent:X}";
            if (lvByte is { } at && at / extent == le && at % extent == h.OffsetInExtent)
            {
                matches.Add($"{what}, exactly where the BAT puts guest offset 0x{guest:X}");
            }
            else
            {
                contradictions.Add($"{what}, but the BAT puts guest offset 0x{guest:X} " + (lvByte is { } b ? $"in LE {b / extent} @0x{b % extent:X}" : "in an unallocated block"));
            }
        }

        if (matches.Count > 0)
        {
            return (Ext4MatchBonus, string.Join("; ", matches));
        }

        return contradictions.Count == 0 ? null : (-Ext4MatchBonus, "contradicted: " + string.Join("; ", contradictions));
    }

    /// <summary>
    /// The block whose data starts in LE <paramref name="le"/> - 1 and ends inside LE <paramref name="le"/>: where it
    /// ends in the next extent and which of its sectors there the guest wrote (all when full per the batmap, else
    /// the bitmap sector seen in <paramref name="before"/>). Null when no block crosses or its bitmap is unknown.
    /// </summary>
    private static (int Block, long EndInNext, bool[] Written)? Crossing(CarvedVdi v, long le, long extent, HashSet<int>? full, CarvePe before)
    {
        var blockBytes = (long)v.Header.BlockSizeBytes;
        var bitmapBytes = v.Header.BitmapSizeSectors * 512;
        var start = le * extent;
        for (var b = 0; b < v.Bat.Length; b++)
        {
            if (v.Bat[b] == VhdBat.Unallocated)
            {
                continue;
            }

            var bitmapAt = v.Bat[b] * 512L;
            var dataStart = bitmapAt + bitmapBytes;
            var dataEnd = dataStart + blockBytes;
            if (dataStart >= start || dataEnd <= start || dataEnd > start + extent || bitmapAt < start - extent)
            {
                continue;
            }

            var sectors = (int)((dataEnd - start) / 512);
            var first = (int)(blockBytes / 512) - sectors;
            var written = new bool[sectors];
            if (full?.Contains(b) == true)
            {
                Array.Fill(written, true);
            }
            else
            {
                var pos = (bitmapAt % extent - CarveScanner.BitmapPhaseBytes) / CarveScanner.GridBytes;
                var idx = before.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
                if (idx < 0 || bitmapBytes != 512)
                {
                    return null;
                }

                var bitmap = before.BitmapSectors[idx];
                for (var i = 0; i < sectors; i++)
                {
                    written[i] = (bitmap[(first + i) / 8] & (0x80 >> ((first + i) % 8))) != 0;
                }
            }

            return (b, dataEnd - start, written);
        }

        return null;
    }

    /// <summary>
    /// At least 8 sectors the block's bitmap marks written, 98 % of them non-zero in <paramref name="p"/>, and the
    /// sector right after the block's end zero (the next block's zero-written gap, or space the guest never wrote).
    /// </summary>
    private static bool ContinuationFits(CarvePe p, long endInNext, bool[] written)
    {
        bool NonZero(long s) => s < p.NonZeroSectors.Length * 64L && (p.NonZeroSectors[s >> 6] & (1UL << (int)(s & 63))) != 0;
        int expected = 0, seen = 0;
        for (var i = 0; i < written.Length; i++)
        {
            if (written[i])
            {
                expected++;
                seen += NonZero(i) ? 1 : 0;
            }
        }

        var after = endInNext / 512;
        return expected >= 8 && seen >= expected * 0.98 && (after >= p.NonZeroSectors.Length * 64L || !NonZero(after));
    }

    /// <summary>Confidence for a best-first score: head, or two independent signals (batmap/tail/content plus a run) 0.99; one strong signal 0.9; bitmap positions alone 0.6.</summary>
    private static double Confidence(double score) => score switch
    {
        >= HeadScore => 0.99,
        >= TailScore => 0.9,
        _ => 0.6,
    };

    /// <summary>
    /// Phase 2's offer for a PE whose bitmap sectors fit the slot: more predicted bitmap sectors matched is more evidence,
    /// many equally fitting PEs is less, and bitmap-like sectors the BAT does not predict here count against (another
    /// VHD's block grid).
    /// </summary>
    private static double BitmapScore(Slot slot, CarvePe p)
    {
        var exp = slot.Expected!.Count;
        var extra = p.Bitmaps.Count - exp;
        return ContentScore + (0.05 * Math.Min(exp, 4)) - (0.01 * Math.Min(slot.Fitting!.Count - 1, 5)) - (0.35 * Math.Min(extra, 2));
    }

    /// <summary>The smallest key above <paramref name="key"/> among <paramref name="sorted"/> (in key order), null when none.</summary>
    private static long? FirstAbove(List<CarvePe> sorted, long key)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            (lo, hi) = Key(sorted[mid].Source, sorted[mid].Pe) <= key ? (mid + 1, hi) : (lo, mid);
        }

        return lo < sorted.Count ? Key(sorted[lo].Source, sorted[lo].Pe) : null;
    }

    /// <summary>The largest key below <paramref name="key"/> among <paramref name="sorted"/> (in key order), null when none.</summary>
    private static long? LastBelow(List<CarvePe> sorted, long key)
    {
        int lo = 0, hi = sorted.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            (lo, hi) = Key(sorted[mid].Source, sorted[mid].Pe) < key ? (mid + 1, hi) : (lo, mid);
        }

        return lo > 0 ? Key(sorted[lo - 1].Source, sorted[lo - 1].Pe) : null;
    }

    /// <summary>Per LE: the nearest placed LE below (-1 when none) and above (<see cref="CarvedVdi.ExtentCount"/> when none).</summary>
    private static (long[] Prev, long[] Next) PlacedNeighbours(CarvedVdi v)
    {
        var prev = new long[v.ExtentCount];
        var next = new long[v.ExtentCount];
        long last = -1;
        for (long le = 0; le < v.ExtentCount; le++)
        {
            prev[le] = last;
            last = v.Extents[le] is not null ? le : last;
        }

        last = v.ExtentCount;
        for (var le = v.ExtentCount - 1; le >= 0; le--)
        {
            next[le] = last;
            last = v.Extents[le] is not null ? le : last;
        }

        return (prev, next);
    }

    /// <summary>
    /// Where lvm2 would have put LE <paramref name="le"/> given the placed LEs <paramref name="lower"/> and
    /// <paramref name="upper"/> of the same LV: PEs increase with LE, so a candidate in order lies after the lower one's
    /// PE by at least the LE distance and before the upper one's by as much; the hint interpolates between them (an LV
    /// grown in many lvextend runs spreads its extents evenly between its anchors).
    /// </summary>
    private static (long Hint, Func<long, bool> InOrder) OrderHint(CarvedVdi v, long le, long lower, long upper)
    {
        var lo = lower >= 0 ? v.Extents[lower] : null;
        var hi = upper < v.ExtentCount ? v.Extents[upper] : null;
        var hint = lo is not null && hi is not null && hi.Source == lo.Source && hi.Pe > lo.Pe
            ? lo.Pe + ((le - lower) * (hi.Pe - lo.Pe) / (upper - lower))
            : lo is not null ? lo.Pe + (le - lower) : hi is not null ? hi.Pe - (upper - le) : v.Head.Pe + le;
        bool InOrder(long key)
        {
            var (source, pe) = ((int)(key >> 40), key & ((1L << 40) - 1));
            return (lo is null || lo.Source != source || pe >= lo.Pe + (le - lower)) && (hi is null || hi.Source != source || pe <= hi.Pe - (upper - le));
        }

        return (hint, InOrder);
    }

    private static void Trim(Slot slot, long hint, int max)
    {
        if (slot.Candidates.Count <= max)
        {
            return;
        }

        var keep = slot.Candidates.OrderByDescending(c => c.Value.Score).ThenBy(c => Math.Abs((c.Key & ((1L << 40) - 1)) - hint)).Take(max).ToList();
        slot.Candidates.Clear();
        foreach (var (k, c) in keep)
        {
            slot.Candidates[k] = c;
        }
    }

    /// <summary>PE observations contain every expected bitmap position; flagsAgree when full/partial match too.</summary>
    private static bool Fits(List<ushort>? expected, CarvePe p, out bool flagsAgree)
    {
        flagsAgree = true;
        if (expected is null)
        {
            return true;
        }

        foreach (var e in expected)
        {
            var pos = e & PositionMask;
            var idx = p.Bitmaps.FindIndex(o => (o & ~CarveScanner.FullFlag) == pos);
            if (idx < 0)
            {
                return false;
            }

            // Bit 14 marks "flag known" in expectations; compare full/partial only then.
            if ((e & KnownFlag) != 0 && ((e & CarveScanner.FullFlag) != 0) != ((p.Bitmaps[idx] & CarveScanner.FullFlag) != 0))
            {
                flagsAgree = false;
            }
        }

        return true;
    }

    private static bool BatmapFits(CarvedVdi v, CarvePe p)
    {
        var h = p.BatmapHeader!;
        var expectedOffset = VhdBatmapHeader.HeaderOffsetBytes(v.Header) + 512;
        if ((long)h.BatmapOffsetBytes != expectedOffset || p.Batmap is not { } map)
        {
            return false;
        }

        for (var i = 0; i < map.Length; i++)
        {
            for (var bit = 0; bit < 8 && map[i] != 0; bit++)
            {
                if ((map[i] & (0x80 >> bit)) != 0)
                {
                    var block = (i * 8) + bit;
                    if (block >= v.Bat.Length || v.Bat[block] == VhdBat.Unallocated)
                    {
                        return false;
                    }
                }
            }
        }

        var padded = new byte[VhdBatmapHeader.ChecksumLengthBytes(v.Footer.CurrentSizeBytes)];
        map.AsSpan(0, Math.Min(map.Length, padded.Length)).CopyTo(padded);
        return h.ComputeChecksum(padded, v.Footer.CurrentSizeBytes) == h.StoredChecksum;
    }

    private static HashSet<int>? FullBlocks(CarvePe p)
    {
        if (p.Batmap is not { } map)
        {
            return null;
        }

        var set = new HashSet<int>();
        for (var i = 0; i < map.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                if ((map[i] & (0x80 >> bit)) != 0)
                {
                    set.Add((i * 8) + bit);
                }
            }
        }

        return set;
    }

    /// <summary>The full-block set when every fitting batmap agrees on it; null when unknown.</summary>
    private static HashSet<int>? KnownFullBlocks(CarvedVdi v, List<CarvePe> batmaps)
    {
        HashSet<int>? known = null;
        foreach (var b in batmaps.Where(b => BatmapFits(v, b)))
        {
            var set = new HashSet<int>();
            for (var i = 0; i < b.Batmap!.Length; i++)
            {
                for (var bit = 0; bit < 8; bit++)
                {
                    if ((b.Batmap[i] & (0x80 >> bit)) != 0)
                    {
                        set.Add((i * 8) + bit);
                    }
                }
            }

            if (known is null)
            {
                known = set;
            }
            else if (!known.SetEquals(set))
            {
                return null;
            }
        }

        return known;
    }

    /// <summary>Per LE: bitmap positions the BAT predicts (bit 15 full, bit 14 = full/partial known).</summary>
    private static Dictionary<long, List<ushort>> ExpectedBitmaps(CarvedVdi v, long extent, HashSet<int>? full)
    {
        var result = new Dictionary<long, List<ushort>>();
        // batmap header + 128 KiB batmap + three 512-byte locators (xenserver-lvhd.md 2.8): 0x420E00 for SM VHDs.
        var metadataEnd = VhdBatmapHeader.HeaderOffsetBytes(v.Header) + 512 + (128 * 1024) + (3 * 512);
        for (var b = 0; b < v.Bat.Length; b++)
        {
            var e = v.Bat[b];
            if (e == VhdBat.Unallocated)
            {
                continue;
            }

            var at = e * 512L;
            var le = at / extent;
            var off = at % extent;
            if (off < CarveScanner.BitmapPhaseBytes || (off - CarveScanner.BitmapPhaseBytes) % CarveScanner.GridBytes != 0)
            {
                continue;
            }

            // The gap before the first block is metadata (batmap tail, differencing locators), not zero-written.
            if (v.Footer.DiskType == VhdDiskType.Differencing && at - CarveScanner.BitmapPhaseBytes < metadataEnd)
            {
                continue;
            }

            var pos = (ushort)((off - CarveScanner.BitmapPhaseBytes) / CarveScanner.GridBytes);
            if (full is not null)
            {
                pos |= KnownFlag;
                if (full.Contains(b))
                {
                    pos |= CarveScanner.FullFlag;
                }
            }

            if (!result.TryGetValue(le, out var list))
            {
                result[le] = list = [];
            }

            list.Add(pos);
        }

        foreach (var list in result.Values)
        {
            list.Sort((a, b) => (a & PositionMask).CompareTo(b & PositionMask));
        }

        return result;
    }

    private static void FillGaps(IReadOnlyList<CarvePe[]> pes, IReadOnlyList<CarvedVdi> vdis, Dictionary<long, (CarvedVdi? Vdi, long Le)> owner,
        IReadOnlySet<long> claimed, List<Finding> findings)
    {
        bool progress;
        var exactOnly = true;
        do
        {
            progress = false;
            foreach (var v in vdis)
            {
                for (long le = 1; le < v.ExtentCount; le++)
                {
                    if (v.Extents[le] is not null || v.Extents[le - 1] is not { } before)
                    {
                        continue;
                    }

                    var end = le;
                    while (end < v.ExtentCount && v.Extents[end] is null)
                    {
                        end++;
                    }

                    var needed = end - le;
                    var after = end < v.ExtentCount ? v.Extents[end] : null;
                    var source = before.Source;
                    var limit = after is not null && after.Source == source ? after.Pe : pes[source].Length;
                    // Free PEs still holding bitmap sectors are more likely a deleted VDI's stale extents than this
                    // LV's filler: they are used only when the clean ones do not suffice.
                    var free = new List<long>();
                    var stale = new List<long>();
                    for (var p = before.Pe + 1; p < limit && free.Count <= needed; p++)
                    {
                        if (!owner.ContainsKey(Key(source, p)) && pes[source][p].IsQuiet)
                        {
                            (pes[source][p].Bitmaps.Count == 0 ? free : stale).Add(p);
                        }
                    }

                    if (free.Count < needed && !exactOnly)
                    {
                        free = free.Concat(stale).Order().ToList();
                    }

                    // A current LV (re-created SR) inside the gap may sit where these extents were: then no fit is exact.
                    var bracketed = after is not null && after.Source == source;
                    var overwritten = false;
                    for (var p = before.Pe + 1; p < limit && !overwritten; p++)
                    {
                        overwritten = claimed.Contains(Key(source, p));
                    }

                    var exact = bracketed && free.Count == needed && !overwritten;
                    if (free.Count < needed || (exactOnly && !exact))
                    {
                        continue;
                    }

                    // Extents that hold VHD data are placed by content or by an exact allocator gap, never by the
                    // rule alone: a wrong guess would put another LV's bytes into the guest without saying so.
                    if (!exact && Enumerable.Range(0, (int)needed).Any(i => v.RequiredExtents.Contains(le + i)))
                    {
                        continue;
                    }

                    for (var i = 0; i < needed; i++)
                    {
                        var alternatives = exact ? null : free.Skip((int)needed).Take(3).ToList();
                        var ev = new List<string>
                        {
                            exact
                                ? $"allocator gap: exactly {needed} free PE(s) between LE {le - 1} (PE {before.Pe}) and LE {end} (PE {after!.Pe})"
                                : $"allocator rule: lowest free PE after LE {le - 1} (PE {before.Pe}); no content evidence",
                        };
                        var ext = new CarvedExtent(le + i, source, free[i], exact ? 0.8 : 0.3, ev, false, alternatives is { Count: > 0 } ? alternatives : null);
                        v.Extents[le + i] = ext;
                        owner[Key(source, free[i])] = (v, le + i);
                    }

                    progress = true;
                    le = end;
                }
            }

            if (!progress && exactOnly)
            {
                exactOnly = false;
                progress = true;
            }
        }
        while (progress);

        var unfilled = vdis.Sum(v => v.Extents.Count(e => e is null));
        if (unfilled > 0)
        {
            findings.Add(new Finding("CARVE_GAPS_UNFILLED", Severity.Warning, $"{unfilled} logical extent(s) had no free PE left where the allocator would have put them"));
        }
    }
}
