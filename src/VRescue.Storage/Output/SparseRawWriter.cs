// SPDX-License-Identifier: MIT
namespace VRescue.Storage.Output;

/// <summary>
/// A raw disk image written sparsely: ranges of zeros are never written, so they stay holes in the file (the guest
/// reads zeros there either way). Zero detection is per <see cref="HoleGranularityBytes"/>, the file system block size
/// of ext4/xfs, and vectorised. Thread-safe: writes are positional.
/// </summary>
public sealed class SparseRawWriter : IDisposable
{
    /// <summary>Granule for hole detection (a file system block).</summary>
    public const int HoleGranularityBytes = 4096;

    private readonly OutputFile _file;
    private long _writtenBytes;

    private SparseRawWriter(OutputFile file, long lengthBytes)
    {
        _file = file;
        LengthBytes = lengthBytes;
    }

    /// <summary>Size of the finished image (the guest's virtual size).</summary>
    public long LengthBytes { get; }

    /// <summary>Bytes actually written (not holes).</summary>
    public long WrittenBytes => Interlocked.Read(ref _writtenBytes);

    public string FinalPath => _file.FinalPath;

    public static SparseRawWriter Create(string finalPath, long lengthBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthBytes);
        return new SparseRawWriter(OutputFile.Create(finalPath), lengthBytes);
    }

    /// <summary>Writes the non-zero granules of <paramref name="data"/> at <paramref name="offsetBytes"/>.</summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> data)
    {
        if (offsetBytes < 0 || data.Length > LengthBytes - offsetBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"write of {data.Length} bytes at {offsetBytes} runs past the image end ({LengthBytes})");
        }

        var pos = 0;
        while (pos < data.Length)
        {
            var first = NextNonZeroGranule(data, pos);
            if (first < 0)
            {
                return;
            }

            var end = first;
            while (end < data.Length && !IsZero(Granule(data, end)))
            {
                end += Math.Min(HoleGranularityBytes, data.Length - end);
            }

            _file.Write(offsetBytes + first, data[first..end]);
            Interlocked.Add(ref _writtenBytes, end - first);
            pos = end;
        }
    }

    /// <summary>Sets the final length (a trailing hole stays a hole) and renames the file into place.</summary>
    public void Commit()
    {
        _file.SetLength(LengthBytes);
        _file.Commit();
    }

    public void Dispose() => _file.Dispose();

    private static int NextNonZeroGranule(ReadOnlySpan<byte> data, int from)
    {
        for (var pos = from; pos < data.Length; pos += HoleGranularityBytes)
        {
            if (!IsZero(Granule(data, pos)))
            {
                return pos;
            }
        }

        return -1;
    }

    private static ReadOnlySpan<byte> Granule(ReadOnlySpan<byte> data, int pos) => data.Slice(pos, Math.Min(HoleGranularityBytes, data.Length - pos));

    private static bool IsZero(ReadOnlySpan<byte> span) => !span.ContainsAnyExcept((byte)0);
}
