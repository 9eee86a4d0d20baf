// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Vhd;

/// <summary>CHS geometry for the footer, computed from the virtual size (VHD spec appendix "CHS Calculation").</summary>
public readonly record struct VhdGeometry(ushort Cylinders, byte Heads, byte SectorsPerTrack)
{
    /// <summary>The spec's algorithm, as blktap libvhd.c vhd_chs and qemu block/vpc.c calculate_geometry use it.</summary>
    public static VhdGeometry FromSize(ulong sizeBytes)
    {
        var totalSectors = Math.Min(sizeBytes / 512, 65535UL * 16 * 255);
        ulong sectorsPerTrack, heads, cylinderTimesHeads;
        if (totalSectors >= 65535UL * 16 * 63)
        {
            sectorsPerTrack = 255;
            heads = 16;
            cylinderTimesHeads = totalSectors / sectorsPerTrack;
        }
        else
        {
            sectorsPerTrack = 17;
            cylinderTimesHeads = totalSectors / sectorsPerTrack;
            heads = Math.Max((cylinderTimesHeads + 1023) / 1024, 4);
            if (cylinderTimesHeads >= heads * 1024 || heads > 16)
            {
                sectorsPerTrack = 31;
                heads = 16;
                cylinderTimesHeads = totalSectors / sectorsPerTrack;
            }

            if (cylinderTimesHeads >= heads * 1024)
            {
                sectorsPerTrack = 63;
                heads = 16;
                cylinderTimesHeads = totalSectors / sectorsPerTrack;
            }
        }

        return new VhdGeometry((ushort)(cylinderTimesHeads / heads), (byte)heads, (byte)sectorsPerTrack);
    }
}
