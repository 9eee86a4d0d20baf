// SPDX-License-Identifier: MIT
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace VRescue.Storage.Scanning;

/// <summary>
/// One bit per 512-byte sector: set when the sector holds a non-zero byte. Hot path of the carve scan (every byte
/// of a PV goes through it), so it tests the first 8 bytes of every sector without branches and reads the rest
/// of a sector only when those are zero: random or compressed data costs one load per sector.
/// </summary>
public static class NonZeroSectorMap
{
    /// <summary>Bytes per sector the map counts in.</summary>
    public const int SectorBytes = 512;

    /// <summary>ulongs needed for the map of <paramref name="lengthBytes"/> bytes (whole sectors only).</summary>
    public static int WordCount(int lengthBytes) => ((lengthBytes / SectorBytes) + 63) / 64;

    /// <summary>
    /// Writes the map of the whole sectors of <paramref name="bytes"/> (a trailing partial sector is not counted)
    /// into <paramref name="bits"/>: bit <c>s &amp; 63</c> of word <c>s &gt;&gt; 6</c> for sector <c>s</c>; the
    /// first <see cref="WordCount"/> words are overwritten. Returns true when any sector is non-zero.
    /// </summary>
    // Fully optimised from the first call: a scan is over before tiered JIT would promote the loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool Fill(ReadOnlySpan<byte> bytes, Span<ulong> bits)
    {
        var sectors = bytes.Length / SectorBytes;
        var words = (sectors + 63) / 64;
        if (bits.Length < words)
        {
            throw new ArgumentException($"map needs {words} words, got {bits.Length}", nameof(bits));
        }

        ulong any = 0;
        ref var start = ref MemoryMarshal.GetReference(bytes);
        for (var w = 0; w < words; w++)
        {
            var count = Math.Min(64, sectors - (w * 64));
            ref var first = ref Unsafe.Add(ref start, (nint)w * 64 * SectorBytes);

            // First 8 bytes of each sector, branch-free: independent loads the CPU overlaps, one cache line per sector.
            ulong word = 0;
            for (var i = 0; i < count; i++)
            {
                word |= (Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref first, (nint)i * SectorBytes)) != 0 ? 1UL : 0UL) << i;
            }

            // The sectors whose first 8 bytes are zero get a full look; all 64 zero-headed is the hole/zero-fill case.
            var unsure = ~word & (count == 64 ? ulong.MaxValue : (1UL << count) - 1);
            if (word == 0 && !MemoryMarshal.CreateReadOnlySpan(ref first, count * SectorBytes).ContainsAnyExcept((byte)0))
            {
                unsure = 0;
            }

            while (unsure != 0)
            {
                var i = BitOperations.TrailingZeroCount(unsure);
                unsure &= unsure - 1;
                if (SectorIsNonZero(ref Unsafe.Add(ref first, (nint)i * SectorBytes)))
                {
                    word |= 1UL << i;
                }
            }

            bits[w] = word;
            any |= word;
        }

        return any != 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SectorIsNonZero(ref byte sector)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<byte>.Zero;
            for (nuint o = 0; o < SectorBytes; o += 64)
            {
                acc |= Vector256.LoadUnsafe(ref sector, o) | Vector256.LoadUnsafe(ref sector, o + 32);
            }

            return acc != Vector256<byte>.Zero;
        }

        return MemoryMarshal.CreateReadOnlySpan(ref sector, SectorBytes).ContainsAnyExcept((byte)0);
    }
}
