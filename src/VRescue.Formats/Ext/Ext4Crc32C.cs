// SPDX-License-Identifier: MIT
using System.Numerics;

namespace VRescue.Formats.Ext;

/// <summary>
/// The kernel's ext4 crc32c (lib/crc32.c __crc32c_le as fs/ext4 calls it): Castagnoli polynomial, the caller's seed,
/// no final inversion; chained by passing the previous result as the next seed.
/// </summary>
internal static class Ext4Crc32C
{
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }
}
