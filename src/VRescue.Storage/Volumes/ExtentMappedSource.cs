// SPDX-License-Identifier: MIT
namespace VRescue.Storage.Volumes;

/// <summary>One linear run of logical extents placed on a physical volume.</summary>
/// <param name="StartExtent">First logical extent of the run (LVM segment start_extent).</param>
/// <param name="ExtentCount">Number of extents (LVM segment extent_count).</param>
/// <param name="Pv">The PV's bytes (a partition or whole-disk view starting at the PV).</param>
/// <param name="PeStartBytes">Byte offset of PE 0 in <paramref name="Pv"/> (pe_start x 512).</param>
/// <param name="PvStartExtent">First physical extent (LVM stripes = ["pvN", PE]).</param>
public sealed record ExtentRun(long StartExtent, long ExtentCount, IBlockSource Pv, long PeStartBytes, long PvStartExtent)
{
    /// <summary>
    /// True when a segment's extents have byte addresses on both sides: start_extent and the PV extent not negative,
    /// extent_count positive, and both ends below 2^63 bytes. Metadata text can hold any 64-bit numbers; a segment
    /// outside this is reported by the caller and not mapped.
    /// </summary>
    public static bool IsAddressable(long startExtent, long extentCount, long pvStartExtent, long extentSizeBytes)
    {
        var maxExtents = long.MaxValue / Math.Max(extentSizeBytes, 1);
        return startExtent >= 0 && extentCount > 0 && pvStartExtent >= 0 &&
            startExtent <= maxExtents - extentCount && pvStartExtent <= maxExtents - extentCount;
    }
}

/// <summary>
/// A logical volume read through its extent map without device-mapper: LE l lives at
/// pe_start + PE x extent_size on its PV (lvm2 research brief section 4.3, the same formula blktap
/// lvm/lvm-util.c uses for inactive LVs). Extents not covered by any run read as zeros and are reported
/// by <see cref="UnmappedExtents"/>; extents beyond the PV's end are short and raise a read error.
/// </summary>
public sealed class ExtentMappedSource : IBlockSource
{
    private readonly ExtentRun[] _runs;

    public ExtentMappedSource(string name, long extentSizeBytes, long extentCount, IEnumerable<ExtentRun> runs)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(extentSizeBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(extentCount);
        Name = name;
        ExtentSizeBytes = extentSizeBytes;
        LengthBytes = checked(extentCount * extentSizeBytes);
        _runs = runs.OrderBy(r => r.StartExtent).ToArray();
    }

    public string Name { get; }

    public long LengthBytes { get; }

    public long ExtentSizeBytes { get; }

    /// <summary>Logical extents that no run maps (an LV whose segments leave holes).</summary>
    public IEnumerable<long> UnmappedExtents()
    {
        var count = LengthBytes / ExtentSizeBytes;
        for (long le = 0; le < count; le++)
        {
            if (Find(le) is null)
            {
                yield return le;
            }
        }
    }

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        var total = 0;
        while (!buffer.IsEmpty && offsetBytes < LengthBytes)
        {
            var le = offsetBytes / ExtentSizeBytes;
            var inExtent = offsetBytes % ExtentSizeBytes;
            var run = Find(le);
            var runEndBytes = run is null ? (le + 1) * ExtentSizeBytes : (run.StartExtent + run.ExtentCount) * ExtentSizeBytes;
            var n = (int)Math.Min(buffer.Length, Math.Min(runEndBytes, LengthBytes) - offsetBytes);
            if (run is null)
            {
                buffer[..n].Clear();
            }
            else
            {
                var pvOffset = checked(run.PeStartBytes + ((run.PvStartExtent + le - run.StartExtent) * ExtentSizeBytes) + inExtent);
                var got = run.Pv.ReadAt(pvOffset, buffer[..n]);
                if (got < n)
                {
                    throw new SourceReadException(Name, offsetBytes + got, n - got,
                        $"extent {le} maps to {run.Pv.Name} offset 0x{pvOffset:X}, beyond its end ({run.Pv.LengthBytes} bytes): truncated PV");
                }
            }

            total += n;
            offsetBytes += n;
            buffer = buffer[n..];
        }

        return total;
    }

    private ExtentRun? Find(long logicalExtent)
    {
        int lo = 0, hi = _runs.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var r = _runs[mid];
            if (logicalExtent < r.StartExtent)
            {
                hi = mid - 1;
            }
            else if (logicalExtent >= r.StartExtent + r.ExtentCount)
            {
                lo = mid + 1;
            }
            else
            {
                return r;
            }
        }

        return null;
    }
}
