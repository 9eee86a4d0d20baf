// SPDX-License-Identifier: MIT
namespace VRescue.Storage;

/// <summary>
/// A source read through with <paramref name="patch"/> in place of its bytes at <paramref name="patchOffsetBytes"/>: a
/// structure VRescue rebuilt (a VHD footer) shown to readers without writing anything.
/// </summary>
public sealed class OverlayBlockSource(IBlockSource inner, long patchOffsetBytes, byte[] patch) : IBlockSource
{
    public string Name => inner.Name;

    public long LengthBytes => inner.LengthBytes;

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        var n = inner.ReadAt(offsetBytes, buffer);
        var from = Math.Max(offsetBytes, patchOffsetBytes);
        var to = Math.Min(offsetBytes + n, patchOffsetBytes + patch.Length);
        if (from < to)
        {
            patch.AsSpan((int)(from - patchOffsetBytes), (int)(to - from)).CopyTo(buffer[(int)(from - offsetBytes)..]);
        }

        return n;
    }
}
