// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Recovery.Sr;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// A finding of <c>vrescue vhd check</c> with its place on the evidence: for a VHD file <see cref="OffsetBytes"/> is the
/// file offset; for a VDI inside an SR it is the offset on the SR disk (<see cref="Disk"/>), the LV offset read through
/// the LV's extent map, and <see cref="LvOffsetBytes"/> keeps the offset within <see cref="Lv"/>.
/// </summary>
public sealed record VhdCheckFinding(
    string Code,
    Severity Severity,
    string Message,
    long? OffsetBytes,
    string? Field,
    string? Stored,
    string? Expected,
    long? LvOffsetBytes = null,
    string? Lv = null,
    string? Disk = null)
{
    /// <summary>A finding in a VHD file: the offset is already absolute in the file.</summary>
    public static VhdCheckFinding InFile(Finding f) => new(f.Code, f.Severity, f.Message, f.OffsetBytes, f.Field, f.Stored, f.Expected);
}

/// <summary>
/// Places LV-relative findings on the SR's disks: LE = offset / extent size, the segment holding LE names the PV (and so
/// the disk), and <see cref="AssembledLv.DiskOffset"/> gives disk offset = PV offset + pe_start + PE × extent size +
/// offset % extent size (lvm2 lib/metadata/lv_manip.c: a linear segment maps LE to PE; research brief §4.3).
/// </summary>
internal sealed class VhdSrLocator(AssembledSr sr, AssembledLv target)
{
    /// <summary>The LV a finding is about: a parent's findings carry its source name as prefix (VhdChain), the rest are the target's.</summary>
    public AssembledLv LvOf(Finding f) =>
        sr.Lvs.FirstOrDefault(l => l != target && f.Message.StartsWith(l.Source.Name + ": ", StringComparison.Ordinal)) ?? target;

    public VhdCheckFinding Locate(Finding f)
    {
        var lv = LvOf(f);
        if (f.OffsetBytes is not { } lvOffset)
        {
            return new VhdCheckFinding(f.Code, f.Severity, f.Message, null, f.Field, f.Stored, f.Expected, null, lv.Lv.Name, null);
        }

        var extent = lv.Source.ExtentSizeBytes;
        var le = lvOffset / extent;
        var segment = lv.Segments.FirstOrDefault(s => le >= s.StartExtent && le < s.StartExtent + s.ExtentCount);
        var disk = segment is null ? null : sr.Probed.Pvs.FirstOrDefault(p => p.PvUuid == segment.PvUuid)?.Source ?? lv.DiskName;
        var diskOffset = lvOffset >= 0 && lvOffset < lv.SizeBytes ? lv.DiskOffset(lvOffset) : null;
        return new VhdCheckFinding(f.Code, f.Severity, f.Message, diskOffset, f.Field, f.Stored, f.Expected, lvOffset, lv.Lv.Name, diskOffset is null ? null : disk);
    }
}
