// SPDX-License-Identifier: MIT
namespace VRescue.TestSupport;

/// <summary>Byte ranges as tests compute them from real-tool facts.</summary>
public static class Ranges
{
    /// <summary>Sorted, with touching ranges joined (as a ddrescue mapfile or a bad-range list reports them).</summary>
    public static List<(long Offset, long Length)> Merge(IEnumerable<(long Offset, long Length)> ranges)
    {
        var merged = new List<(long Offset, long Length)>();
        foreach (var r in ranges.OrderBy(r => r.Offset))
        {
            if (merged.Count > 0 && merged[^1].Offset + merged[^1].Length == r.Offset)
            {
                merged[^1] = (merged[^1].Offset, merged[^1].Length + r.Length);
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged;
    }
}
