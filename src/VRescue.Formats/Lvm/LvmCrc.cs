// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Formats.Lvm;

/// <summary>
/// LVM2's checksum (lvm2 lib/misc/crc.c calc_crc): reflected CRC-32, polynomial 0xEDB88320, initial register
/// 0xF597A6CF, no inversion and no final XOR. Used for the label (bytes 20..511), the mda header (bytes 4..511)
/// and the metadata text (raw_locn.size bytes including the NUL).
/// </summary>
public static class LvmCrc
{
    /// <summary>INITIAL_CRC in lib/misc/crc.h.</summary>
    public const uint Initial = 0xF597A6CF;

    /// <summary>Checksum of <paramref name="data"/> from the initial register.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.Update(Initial, data);

    /// <summary>
    /// Continues a checksum: <c>Continue(Compute(a), b) == Compute(a + b)</c>. LVM checksums a wrapped text this
    /// way (format-text.c: first part to the end of the ring, then the part at ring offset 512).
    /// </summary>
    public static uint Continue(uint crc, ReadOnlySpan<byte> data) => Crc32.Update(crc, data);
}
