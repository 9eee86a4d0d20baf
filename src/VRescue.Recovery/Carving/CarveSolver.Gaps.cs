// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Carving;

// Extents without content evidence, placed by lvm2's allocator rule.
public static partial class CarveSolver
{
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
