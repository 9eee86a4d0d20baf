// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Carving;

// Confidence against the rivals: what is sure, what is a guess.
public static partial class CarveSolver
{
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
                .Select(c => PeOf(c.Key)).Order().ToList();
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
}
