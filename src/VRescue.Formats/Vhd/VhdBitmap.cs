// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Vhd;

/// <summary>
/// MSB-first bit maps used by VHD sector bitmaps and the blktap batmap: bit n is byte n/8, mask 0x80 &gt;&gt; (n % 8)
/// (big-endian bitmaps since creator version 1.1; blktap include/vhd.h).
/// </summary>
public static class VhdBitmap
{
    /// <summary>True when bit <paramref name="index"/> is set; bits beyond the map read as clear.</summary>
    public static bool IsSet(ReadOnlySpan<byte> map, long index)
    {
        if (index < 0 || index / 8 >= map.Length)
        {
            return false;
        }

        return (map[(int)(index / 8)] & (0x80 >> (int)(index % 8))) != 0;
    }

    /// <summary>Sets bit <paramref name="index"/> (for encoders and tests).</summary>
    public static void Set(Span<byte> map, long index) => map[(int)(index / 8)] |= (byte)(0x80 >> (int)(index % 8));

    /// <summary>Number of set bits among the first <paramref name="bitCount"/>.</summary>
    public static int CountSet(ReadOnlySpan<byte> map, long bitCount)
    {
        var count = 0;
        for (long i = 0; i < bitCount; i++)
        {
            if (IsSet(map, i))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Index of the first bit at or after <paramref name="start"/> whose value differs from bit <paramref name="start"/>, capped at <paramref name="end"/>.</summary>
    public static long RunEnd(ReadOnlySpan<byte> map, long start, long end)
    {
        var value = IsSet(map, start);
        var i = start + 1;
        while (i < end)
        {
            // Whole bytes at once where the run covers them.
            if (i % 8 == 0 && i + 8 <= end && i / 8 < map.Length && map[(int)(i / 8)] == (value ? 0xFF : 0x00))
            {
                i += 8;
                continue;
            }

            if (IsSet(map, i) != value)
            {
                break;
            }

            i++;
        }

        return Math.Min(i, end);
    }
}
