// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Common;

/// <summary>
/// Reflected CRC-32, polynomial 0xEDB88320, as a raw register update with no inversion. The IEEE CRC-32
/// (GPT, zlib) is <c>~Update(~0u, data)</c>; LVM's calc_crc is <c>Update(0xF597A6CF, data)</c>
/// (lvm2 lib/misc/crc.c: INITIAL_CRC, no final XOR).
/// </summary>
public static class Crc32
{
    private static readonly uint[] s_table = BuildTable();

    /// <summary>Feeds <paramref name="data"/> through the register starting at <paramref name="crc"/>.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var table = s_table;
        foreach (var b in data)
        {
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }

    /// <summary>Standard IEEE CRC-32 (UEFI spec GPT header and entry array CRCs).</summary>
    public static uint Ieee(ReadOnlySpan<byte> data) => ~Update(~0u, data);

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
