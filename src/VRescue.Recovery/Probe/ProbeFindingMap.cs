// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Recovery.Probe;

/// <summary>
/// Maps a finding code onto the failure mode it indicates and the command to run next. Format readers own
/// their codes (prefix per format); probe's own codes are listed here.
/// </summary>
public static class ProbeFindingMap
{
    public const string SourceEmpty = "SOURCE_EMPTY";
    public const string SourceTooSmall = "SOURCE_TOO_SMALL";
    public const string NotAnSr = "NOT_AN_SR";
    public const string PvOutsidePartitionTable = "PV_OUTSIDE_PARTITION_TABLE";
    public const string PvMissing = "SR_PV_MISSING";
    public const string SeqnoMismatch = "SR_SEQNO_MISMATCH";
    public const string NotXenVg = "VG_NOT_XENSERVER";
    public const string PvWithoutVg = "PV_WITHOUT_VG";
    public const string LvBeyondSource = "LV_EXTENTS_BEYOND_SOURCE";
    public const string LvBeyondPv = "LV_EXTENTS_BEYOND_PV";
    public const string LvSegmentUnsupported = "LV_SEGMENT_UNSUPPORTED";
    public const string LvSegmentUnmappable = "LV_SEGMENT_UNMAPPABLE";
    public const string VdiUnreadable = "VDI_UNREADABLE";
    public const string VdiParentMissing = "VDI_PARENT_MISSING";
    public const string VdiHiddenLeaf = "VDI_HIDDEN_LEAF";
    public const string VdiNoMgtRecord = "VDI_NO_MGT_RECORD";
    public const string MgtRecordWithoutLv = "MGT_RECORD_WITHOUT_LV";
    public const string MgtDeletedRecord = "MGT_DELETED_RECORD";
    public const string MgtMissing = "MGT_MISSING";
    public const string JournalPresent = "SR_JOURNAL_PRESENT";

    /// <summary>The failure mode <paramref name="f"/> indicates and the next step for <paramref name="source"/>.</summary>
    public static (FailureMode Mode, string? NextStep) Classify(Finding f, string source, string? vdiUuid = null)
    {
        var q = Quote(source);
        return f.Code switch
        {
            SourceEmpty or SourceTooSmall or NotAnSr => (FailureMode.NotAnSr, null),
            PvOutsidePartitionTable => (FailureMode.PartitionTableDamaged, $"vrescue partitions scan {q}"),
            PvMissing => (FailureMode.SrNotRecognised, "add the image of every PV of the SR to the command line"),
            LvBeyondSource or LvBeyondPv or "LVM_PV_TRUNCATED" => (FailureMode.TruncatedImage, $"image the whole device again (ddrescue), or vrescue export {q} --out DIR for partial output"),
            VdiUnreadable => (FailureMode.VdiErrors, $"vrescue vhd check {q} --vdi {vdiUuid}"),
            VdiParentMissing => (FailureMode.VdiErrors, $"vrescue lvm history {q} (the parent LV may survive in an older metadata version)"),
            VdiHiddenLeaf or MgtRecordWithoutLv or MgtDeletedRecord => (FailureMode.VdiDeleted, $"vrescue recover {q} --out DIR (older metadata versions: vrescue lvm history {q})"),
            _ when f.Severity == Severity.Info => (FailureMode.None, null),
            _ when f.Code.StartsWith("GPT_", StringComparison.Ordinal) || f.Code.StartsWith("MBR_", StringComparison.Ordinal)
                => (FailureMode.PartitionTableDamaged, $"vrescue partitions scan {q}"),
            _ when f.Code.StartsWith("LVM_", StringComparison.Ordinal) || f.Code == PvWithoutVg || f.Code == SeqnoMismatch || f.Code == LvSegmentUnmappable
                => (FailureMode.LvmMetadataDamaged, $"vrescue lvm history {q}"),
            _ when f.Code.StartsWith("VHD_", StringComparison.Ordinal)
                => (FailureMode.VdiErrors, vdiUuid is null ? $"vrescue vhd check {q}" : $"vrescue vhd check {q} --vdi {vdiUuid}"),
            _ => (FailureMode.None, null),
        };
    }

    /// <summary>Most serious first: the report's overall failure mode is the first one present.</summary>
    public static readonly FailureMode[] Priority =
    [
        FailureMode.NotAnSr, FailureMode.TruncatedImage, FailureMode.PartitionTableDamaged, FailureMode.SrNotRecognised,
        FailureMode.LvmMetadataDamaged, FailureMode.VdiErrors, FailureMode.VdiDeleted, FailureMode.SrReinitialised,
    ];

    private static string Quote(string path) => path.Contains(' ', StringComparison.Ordinal) ? $"'{path}'" : path;
}
