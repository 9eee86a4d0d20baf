// SPDX-License-Identifier: MIT
namespace VRescue.Storage;

/// <summary>
/// A read-only, positional byte source: an image file, a block device, or a view onto one (partition, PV,
/// LV by extent map, VHD). There is deliberately no write method and no shared position, so scans may run in
/// parallel and inspection can never modify evidence.
/// </summary>
public interface IBlockSource
{
    /// <summary>Human-readable name used in messages (path, or "path: partition 3", "LV VHD-…").</summary>
    string Name { get; }

    /// <summary>Size in bytes.</summary>
    long LengthBytes { get; }

    /// <summary>
    /// Reads up to <c>buffer.Length</c> bytes at <paramref name="offsetBytes"/>. Returns the count read, which is
    /// short only at the end of the source. Throws <see cref="SourceReadException"/> on I/O errors.
    /// </summary>
    int ReadAt(long offsetBytes, Span<byte> buffer);
}

/// <summary>An I/O failure or a short read, with the source and offset attached.</summary>
public sealed class SourceReadException(string sourceName, long offsetBytes, int lengthBytes, string message, Exception? inner = null)
    : IOException($"{sourceName}: cannot read {lengthBytes} bytes at offset 0x{offsetBytes:X} ({offsetBytes}): {message}", inner)
{
    public string SourceName { get; } = sourceName;
    public long OffsetBytes { get; } = offsetBytes;
    public int LengthBytes { get; } = lengthBytes;
}

public static class BlockSourceExtensions
{
    /// <summary>Reads exactly <c>buffer.Length</c> bytes or throws <see cref="SourceReadException"/> (truncated source).</summary>
    public static void ReadExactlyAt(this IBlockSource source, long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes < 0 || offsetBytes > source.LengthBytes - buffer.Length)
        {
            throw new SourceReadException(source.Name, offsetBytes, buffer.Length,
                $"beyond the end of the source ({source.LengthBytes} bytes)");
        }

        var done = 0;
        while (done < buffer.Length)
        {
            var n = source.ReadAt(offsetBytes + done, buffer[done..]);
            if (n <= 0)
            {
                throw new SourceReadException(source.Name, offsetBytes, buffer.Length, $"short read ({done} bytes)");
            }

            done += n;
        }
    }

    /// <summary>
    /// Reads as much of <paramref name="buffer"/> as the source holds and zero-fills the rest (what lies beyond its
    /// end). For views whose tail may be missing: a truncated image, an LV whose last extent is gone.
    /// </summary>
    public static void ReadZeroFilled(this IBlockSource source, long offsetBytes, Span<byte> buffer)
    {
        var done = 0;
        while (done < buffer.Length)
        {
            var n = source.ReadAt(checked(offsetBytes + done), buffer[done..]);
            if (n <= 0)
            {
                break;
            }

            done += n;
        }

        buffer[done..].Clear();
    }

    /// <summary>Reads and returns a new array; the length must already be bounded by the caller.</summary>
    public static byte[] ReadBytes(this IBlockSource source, long offsetBytes, int lengthBytes)
    {
        var buffer = new byte[lengthBytes];
        source.ReadExactlyAt(offsetBytes, buffer);
        return buffer;
    }

    /// <summary>A view of <paramref name="lengthBytes"/> bytes starting at <paramref name="offsetBytes"/>.</summary>
    public static IBlockSource Slice(this IBlockSource source, long offsetBytes, long lengthBytes, string? name = null) =>
        new SliceBlockSource(source, offsetBytes, lengthBytes, name);
}
