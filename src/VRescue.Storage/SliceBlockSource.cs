// SPDX-License-Identifier: MIT
namespace VRescue.Storage;

/// <summary>A window onto another source: a partition or a PV inside a disk. Reads past its end are short.</summary>
public sealed class SliceBlockSource : IBlockSource
{
    private readonly IBlockSource _parent;

    public SliceBlockSource(IBlockSource parent, long offsetBytes, long lengthBytes, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offsetBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(lengthBytes);
        _parent = parent;
        OffsetBytes = offsetBytes;
        // A partition entry may claim more than the disk holds; the view ends where the bytes end.
        LengthBytes = Math.Max(0, Math.Min(lengthBytes, parent.LengthBytes - offsetBytes));
        Name = name ?? $"{parent.Name}@0x{offsetBytes:X}";
    }

    public string Name { get; }

    /// <summary>Where this view starts in the parent.</summary>
    public long OffsetBytes { get; }

    public long LengthBytes { get; }

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes < 0 || offsetBytes >= LengthBytes)
        {
            return 0;
        }

        var n = (int)Math.Min(buffer.Length, LengthBytes - offsetBytes);
        return _parent.ReadAt(OffsetBytes + offsetBytes, buffer[..n]);
    }
}
