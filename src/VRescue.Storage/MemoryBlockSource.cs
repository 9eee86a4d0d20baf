// SPDX-License-Identifier: MIT
namespace VRescue.Storage;

/// <summary>A byte array as a block source: small structures read from elsewhere, synthetic and hostile inputs.</summary>
public sealed class MemoryBlockSource(byte[] bytes, string name = "memory") : IBlockSource
{
    public string Name { get; } = name;

    public long LengthBytes => bytes.Length;

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes < 0 || offsetBytes >= bytes.Length)
        {
            return 0;
        }

        var n = (int)Math.Min(buffer.Length, bytes.Length - offsetBytes);
        bytes.AsSpan((int)offsetBytes, n).CopyTo(buffer);
        return n;
    }
}
