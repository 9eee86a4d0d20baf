// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>How the source position of a guest block was established.</summary>
public enum VhdBlockProvenance
{
    /// <summary>The stored BAT entry, checked against the file and the other entries.</summary>
    Bat,

    /// <summary>A block found on the allocation grid whose BAT entry is lost, placed because it was the only
    /// unreferenced block and the only lost entry (elimination).</summary>
    Elimination,

    /// <summary>Placed by guest filesystem structure (an ext superblock backup naming its group); not proven by VHD metadata.</summary>
    Inferred,
}

/// <summary>Where guest block <see cref="GuestBlock"/> lives in the source.</summary>
public sealed record VhdBlockPlacement(long GuestBlock, long BitmapOffsetBytes, VhdBlockProvenance Provenance, string? Evidence = null);

/// <summary>A guest byte range that could not be recovered, with why.</summary>
public sealed record VhdBadRange(long OffsetBytes, long LengthBytes, string Reason)
{
    public long EndBytes => OffsetBytes + LengthBytes;
}

/// <summary>
/// A block found on the allocation grid that no valid BAT entry references: its guest position is unknown, so its data
/// is not in the output; it stays in the source at <see cref="DataOffsetBytes"/> (source offsets: file, or LV with --vdi).
/// </summary>
public sealed record VhdOrphanBlock(long BitmapOffsetBytes, int SectorsPresent, long DataOffsetBytes, long DataSizeBytes);

/// <summary>
/// Everything <see cref="VhdRecoveryAnalyzer"/> decided about a damaged VHD: the footer and header to use (stored or
/// rebuilt), where each guest block is, what could not be recovered, and the findings behind it. Check prints it,
/// repair writes it out.
/// </summary>
public sealed class VhdRecoveryPlan
{
    internal VhdRecoveryPlan(IBlockSource source, VhdFooter? footer, VhdDynamicHeader? header,
        IReadOnlyDictionary<long, VhdBlockPlacement> placements, IReadOnlyList<VhdOrphanBlock> orphans,
        IReadOnlyList<VhdBadRange> badRanges, IReadOnlyList<Finding> findings, IReadOnlyList<string> repairs, VhdImageSummary stored)
    {
        Source = source;
        Footer = footer;
        Header = header;
        Placements = placements;
        Orphans = orphans;
        BadRanges = badRanges;
        Findings = findings;
        Repairs = repairs;
        Stored = stored;
    }

    public IBlockSource Source { get; }

    /// <summary>Footer the output carries (stored, from the copy, or rebuilt); null when the source is not a VHD.</summary>
    public VhdFooter? Footer { get; }

    /// <summary>Dynamic header in use (stored or rebuilt); null for fixed disks.</summary>
    public VhdDynamicHeader? Header { get; }

    /// <summary>Guest block → source position, for every block with data in this VHD.</summary>
    public IReadOnlyDictionary<long, VhdBlockPlacement> Placements { get; }

    /// <summary>Blocks found on the grid that could not be placed (their data is not in the output).</summary>
    public IReadOnlyList<VhdOrphanBlock> Orphans { get; }

    /// <summary>Guest byte ranges that could not be recovered, sorted and merged.</summary>
    public IReadOnlyList<VhdBadRange> BadRanges { get; }

    /// <summary>Every problem found, with absolute source offsets.</summary>
    public IReadOnlyList<Finding> Findings { get; }

    /// <summary>What repair does, one line each ("footer: rebuilt from the copy at offset 0").</summary>
    public IReadOnlyList<string> Repairs { get; }

    /// <summary>What the stored metadata said before repair.</summary>
    public VhdImageSummary Stored { get; }

    public bool IsVhd => Footer is not null;

    public long VirtualSizeBytes => Footer is { } f && f.CurrentSizeBytes <= VhdFooter.MaxCurrentSizeBytes ? (long)f.CurrentSizeBytes : 0;

    public long BlockSizeBytes => Header?.BlockSizeBytes ?? 0;

    public long LostBytes => BadRanges.Sum(r => r.LengthBytes);

    /// <summary>clean (nothing to do), repairable (findings, nothing lost), data-loss, not-a-vhd.</summary>
    public VhdVerdict Verdict =>
        !IsVhd ? VhdVerdict.NotAVhd
        : BadRanges.Count > 0 || Orphans.Count > 0 ? VhdVerdict.DataLoss
        : Repairs.Count > 0 || Findings.Any(f => f.Severity != Severity.Info) ? VhdVerdict.Repairable
        : VhdVerdict.Clean;

    /// <summary>Guest view of the repaired disk: stored blocks honouring sector bitmaps, lost ranges as zeros.</summary>
    /// <param name="parent">Guest view of the parent for a differencing disk (clear bitmap bits read from it).</param>
    public IBlockSource OpenGuest(IBlockSource? parent = null) => new VhdRecoveredSource(this, parent);
}

/// <summary>The stored state in brief (for reports).</summary>
public sealed record VhdImageSummary(
    string FooterSource,
    string? DiskType,
    long? StoredVirtualSizeBytes,
    int StoredAllocatedBlocks,
    bool BatmapUsable,
    Guid? ParentUuid,
    string? ParentName,
    IReadOnlyList<string> ParentLocators);

/// <summary>The check verdict; also the exit code of <c>vrescue vhd check</c> (0, 1, 2, 3).</summary>
public enum VhdVerdict
{
    Clean,
    Repairable,
    DataLoss,
    NotAVhd,
}
