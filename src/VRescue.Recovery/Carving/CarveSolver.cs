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
public static partial class CarveSolver
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

    /// <summary>The PE number inside a <see cref="Key"/> (its source is <c>key &gt;&gt; 40</c>).</summary>
    private static long PeOf(long key) => key & ((1L << 40) - 1);

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

            foreach (var own in OwnBytes(slot, p))
            {
                if (!evidence.Contains(own.Evidence, StringComparison.Ordinal))
                {
                    score += own.Delta;
                    content += own.Delta;
                    evidence += "; " + own.Evidence;
                }
            }

            var k = Key(p.Source, p.Pe);
            if (!slot.Candidates.TryGetValue(k, out var old) || old.Score < score)
            {
                slot.Candidates[k] = new Candidate(score, baseScore + content, before, after, baseScore, baseEvidence, evidence);
            }
        }

        void Enqueue(Slot slot)
        {
            foreach (var (k, c) in slot.Candidates)
            {
                var pe = PeOf(k);
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

                    var cp = pes[(int)(ck >> 40)][PeOf(ck)];
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
                        var c = Prepare(chosen.Slot, PeOf(k), k)!.Value;
                        Place(chosen.Slot, (int)(k >> 40), PeOf(k), c.Score, c.Evidence);
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
            foreach (var own in OwnBytes(slot, p))
            {
                content += own.Delta;
            }

            return content;
        }

        // Evidence from the PE's content beyond its bitmap sectors: its ext4 superblock copies, and what the guest
        // filesystem says (guestEvidence). Both Offer and Content add it.
        IEnumerable<(double Delta, string Evidence)> OwnBytes(Slot slot, CarvePe p)
        {
            if (Ext4Agreement(slot.Vdi, slot.Le, p, extent) is { } fs)
            {
                yield return fs;
            }

            if (guestEvidence is not null && guestEvidence.TryGetValue((slot.Vdi.Id, slot.Le, Key(p.Source, p.Pe)), out var guest))
            {
                yield return guest;
            }
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
            var (source, pe) = ((int)(key >> 40), PeOf(key));
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

        var keep = slot.Candidates.OrderByDescending(c => c.Value.Score).ThenBy(c => Math.Abs(PeOf(c.Key) - hint)).Take(max).ToList();
        slot.Candidates.Clear();
        foreach (var (k, c) in keep)
        {
            slot.Candidates[k] = c;
        }
    }
}
