// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Vhd;

/// <summary>
/// VHD checksums: one's complement of the 32-bit byte sum (blktap libvhd.c vhd_checksum_footer/header/batmap).
/// </summary>
public static class VhdChecksum
{
    /// <summary>NOT of the byte sum of <paramref name="raw"/>, treating the 4 bytes at <paramref name="checksumOffset"/> as zero.</summary>
    public static uint Compute(ReadOnlySpan<byte> raw, int checksumOffset)
    {
        unchecked
        {
            uint sum = 0;
            for (var i = 0; i < raw.Length; i++)
            {
                if (i < checksumOffset || i >= checksumOffset + 4)
                {
                    sum += raw[i];
                }
            }

            return ~sum;
        }
    }

    /// <summary>NOT of the byte sum of <paramref name="data"/>; bytes are signed when <paramref name="signedBytes"/> (batmap v1.1).</summary>
    public static uint ComputeOver(ReadOnlySpan<byte> data, bool signedBytes = false)
    {
        unchecked
        {
            uint sum = 0;
            foreach (var b in data)
            {
                sum += signedBytes ? (uint)(sbyte)b : b;
            }

            return ~sum;
        }
    }
}
