// SPDX-License-Identifier: MIT
using VRescue.Storage;

namespace VRescue.Recovery.Export;

/// <summary>
/// A view that turns read errors into zeros and remembers where they were, so an export of a truncated or failing
/// source continues and reports what it could not read. A read that fails is retried in
/// <see cref="GranularityBytes"/> pieces, and a piece that fails in <see cref="SectorBytes"/> sectors, so only the
/// bytes that really fail are lost. <see cref="ThreadFailures"/> lets a reader above (a VHD guest view) find out that
/// its last read hit such a range.
/// </summary>
public sealed class UnreadableTrackingSource(IBlockSource inner) : IBlockSource
{
    public const int GranularityBytes = 4096;

    /// <summary>The unit a disk fails in (512n and 512e logical sectors; a ddrescue mapfile's default).</summary>
    public const int SectorBytes = 512;

    [ThreadStatic]
    private static long t_failures;

    private readonly object _lock = new();
    private readonly List<ByteRange> _unreadable = [];

    /// <summary>Failed pieces on the calling thread so far (compare before and after a read).</summary>
    public static long ThreadFailures => t_failures;

    public string Name => inner.Name;

    public long LengthBytes => inner.LengthBytes;

    /// <summary>Ranges of this source that could not be read, merged and sorted.</summary>
    public IReadOnlyList<ByteRange> Unreadable
    {
        get
        {
            lock (_lock)
            {
                return ByteRange.Merge(_unreadable);
            }
        }
    }

    /// <summary>The first read error seen, for the report.</summary>
    public string? FirstError { get; private set; }

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes < 0 || offsetBytes >= LengthBytes || buffer.IsEmpty)
        {
            return 0;
        }

        var n = (int)Math.Min(buffer.Length, LengthBytes - offsetBytes);
        try
        {
            return ReadFully(offsetBytes, buffer[..n]);
        }
        catch (SourceReadException)
        {
            for (var pos = 0; pos < n; pos += GranularityBytes)
            {
                var piece = buffer.Slice(pos, Math.Min(GranularityBytes, n - pos));
                try
                {
                    ReadFully(offsetBytes + pos, piece);
                }
                catch (SourceReadException)
                {
                    for (var sector = 0; sector < piece.Length; sector += SectorBytes)
                    {
                        ReadOrRecord(offsetBytes + pos + sector, piece.Slice(sector, Math.Min(SectorBytes, piece.Length - sector)));
                    }
                }
            }

            return n;
        }
    }

    private void ReadOrRecord(long offsetBytes, Span<byte> piece)
    {
        try
        {
            ReadFully(offsetBytes, piece);
        }
        catch (SourceReadException e)
        {
            piece.Clear();
            t_failures++;
            lock (_lock)
            {
                FirstError ??= e.Message;
                _unreadable.Add(new ByteRange(offsetBytes, piece.Length));
            }
        }
    }

    private int ReadFully(long offsetBytes, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var got = inner.ReadAt(offsetBytes + done, buffer[done..]);
            if (got <= 0)
            {
                throw new SourceReadException(inner.Name, offsetBytes + done, buffer.Length - done, "short read");
            }

            done += got;
        }

        return done;
    }
}

/// <summary>A byte range [<see cref="OffsetBytes"/>, + <see cref="LengthBytes"/>).</summary>
public readonly record struct ByteRange(long OffsetBytes, long LengthBytes)
{
    public long EndBytes => OffsetBytes + LengthBytes;

    /// <summary>Sorted, with touching and overlapping ranges joined.</summary>
    public static IReadOnlyList<ByteRange> Merge(IEnumerable<ByteRange> ranges)
    {
        var result = new List<ByteRange>();
        foreach (var r in ranges.OrderBy(r => r.OffsetBytes))
        {
            if (result.Count > 0 && r.OffsetBytes <= result[^1].EndBytes)
            {
                var last = result[^1];
                result[^1] = new ByteRange(last.OffsetBytes, Math.Max(last.EndBytes, r.EndBytes) - last.OffsetBytes);
            }
            else
            {
                result.Add(r);
            }
        }

        return result;
    }
}
