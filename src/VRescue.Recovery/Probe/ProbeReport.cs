// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Recovery.Probe;

/// <summary>Everything probe learned about the sources, layer by layer. Serialised as-is for --json (docs/json/probe.md).</summary>
public sealed record ProbeReport(
    IReadOnlyList<ProbedDisk> Disks,
    IReadOnlyList<ProbedSr> Srs,
    IReadOnlyList<ProbeFinding> Findings,
    string Diagnosis,
    FailureMode FailureMode);

/// <summary>A source as given on the command line, with its partition table and the PVs found on it.</summary>
public sealed record ProbedDisk(
    string Source,
    long SizeBytes,
    string PartitionTable,
    bool? PrimaryValid,
    bool? BackupValid,
    IReadOnlyList<ProbedPartition> Partitions,
    IReadOnlyList<ProbedPv> Pvs,
    string? Content);

public sealed record ProbedPartition(int Index, long StartBytes, long SizeBytes, string Type, string? Name, bool HoldsPv);

/// <summary>An LVM physical volume: where its label is and what its headers say.</summary>
public sealed record ProbedPv(
    string Source,
    long OffsetBytes,
    string? PvUuid,
    int? LabelSector,
    long? DeviceSizeBytes,
    long? PeStartBytes,
    IReadOnlyList<ProbedMda> MetadataAreas,
    string? VgName,
    long? Seqno);

public sealed record ProbedMda(long OffsetBytes, long SizeBytes, bool HeaderValid, long? CommittedOffsetBytes, long? CommittedSizeBytes, string? CommittedCrc, bool? TextValid);

/// <summary>A XenServer SR = one VG_XenStorage VG.</summary>
public sealed record ProbedSr(
    string? SrUuid,
    string VgName,
    string? VgUuid,
    long Seqno,
    long ExtentSizeBytes,
    string? NameLabel,
    string? NameDescription,
    IReadOnlyList<ProbedSrPv> Pvs,
    IReadOnlyList<ProbedLv> Lvs,
    IReadOnlyList<ProbedVdi> Vdis);

public sealed record ProbedSrPv(string PvKey, string PvUuid, string? Source, long? OffsetBytes, long PeStartBytes, long PeCount, bool Missing);

/// <summary>Every LV of the VG, VDI or not (MGT, journals).</summary>
public sealed record ProbedLv(string LvName, string Kind, string? VdiUuid, long SizeBytes, int SegmentCount, IReadOnlyList<string> Tags);

public sealed record ProbedSegment(long StartExtent, long ExtentCount, string PvUuid, long PvStartExtent);

/// <summary>A VDI: its LV and, for VHD VDIs, what the VHD headers say.</summary>
public sealed record ProbedVdi(
    string Uuid,
    string LvName,
    string VdiType,
    string? NameLabel,
    string? NameDescription,
    long LvSizeBytes,
    long? VirtualSizeBytes,
    string? VhdDiskType,
    string? FooterUuid,
    string? FooterSource,
    bool? FooterValid,
    bool? HeaderValid,
    bool Hidden,
    string? ParentFooterUuid,
    string? ParentUuid,
    string? ParentLvName,
    long? AllocatedBlocks,
    IReadOnlyList<ProbedSegment> Segments,
    int Fragments,
    bool? IsSnapshot,
    string? SnapshotOf);

/// <summary>A finding placed in context: which source, which failure mode it indicates, what to run next.</summary>
public sealed record ProbeFinding(
    string Code,
    string Severity,
    string Message,
    long? OffsetBytes,
    string? Source,
    string? Field,
    string? Stored,
    string? Expected,
    string FailureMode,
    string? NextStep)
{
    public static ProbeFinding From(Finding f, string? source, FailureMode mode, string? nextStep) =>
        new(f.Code, f.Severity.ToString().ToLowerInvariant(), f.Message, f.OffsetBytes, source, f.Field, f.Stored, f.Expected,
            FailureModes.Name(mode), nextStep);
}

/// <summary>The failure modes users bring (mission brief), which findings are mapped onto.</summary>
public enum FailureMode
{
    None,
    NotAnSr,
    SrNotRecognised,
    PartitionTableDamaged,
    LvmMetadataDamaged,
    VdiErrors,
    VdiDeleted,
    SrReinitialised,
    TruncatedImage,
}

public static class FailureModes
{
    public static string Name(FailureMode mode) => mode switch
    {
        FailureMode.None => "none",
        FailureMode.NotAnSr => "not-an-sr",
        FailureMode.SrNotRecognised => "sr-not-recognised",
        FailureMode.PartitionTableDamaged => "partition-table-damaged",
        FailureMode.LvmMetadataDamaged => "lvm-metadata-damaged",
        FailureMode.VdiErrors => "vdi-errors",
        FailureMode.VdiDeleted => "vdi-deleted",
        FailureMode.SrReinitialised => "sr-reinitialised",
        FailureMode.TruncatedImage => "truncated-image",
        _ => mode.ToString(),
    };
}
