// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Storage.Partitions;

namespace VRescue.Recovery.Partitions;

/// <summary>A partition (or whole-disk object) found by its own signatures, not by a table.</summary>
/// <param name="Kind">"lvm-pv", "ext4", "ext3", "ext2", "swap", "fat32", "fat16", "fat12".</param>
/// <param name="StartBytes">Absolute offset of its first byte on the disk.</param>
/// <param name="SizeBytes">Size from its own metadata; null when nothing on disk states it.</param>
/// <param name="SizeSource">Which field gave <paramref name="SizeBytes"/> ("pv_header.device_size", ...).</param>
/// <param name="Confidence">"high", "medium" or "low" (see <paramref name="Evidence"/> for why).</param>
/// <param name="Evidence">What was read and where, one line each.</param>
/// <param name="NestedIn">Set when it lies inside another found object (a guest filesystem inside an SR PV): not a
/// partition of this disk, listed for completeness.</param>
/// <param name="PvUuid">LVM PV UUID (label), when known.</param>
/// <param name="VgName">LVM VG name from the PV's metadata area.</param>
/// <param name="Label">Filesystem or swap label.</param>
/// <param name="Uuid">Filesystem or swap UUID.</param>
/// <param name="PartitionNumberHint">Partition number recorded on disk (the device LVM last saw, e.g. /dev/sda3 -> 3).</param>
public sealed record FoundPartition(
    string Kind,
    long StartBytes,
    long? SizeBytes,
    string? SizeSource,
    string Confidence,
    IReadOnlyList<string> Evidence,
    string? NestedIn = null,
    string? PvUuid = null,
    string? VgName = null,
    string? Label = null,
    string? Uuid = null,
    int? PartitionNumberHint = null)
{
    /// <summary>First byte after it, when the size is known.</summary>
    public long? EndBytes => SizeBytes is { } s ? StartBytes + s : null;
}

/// <summary>A GPT header found anywhere on the disk (primary, backup, or a backup left at an old disk end).</summary>
/// <param name="Lba">Where it was found.</param>
/// <param name="Role">"primary" (LBA 1), "backup" (last LBA) or "other".</param>
/// <param name="HeaderValid">Signature, header CRC and placement checks passed.</param>
/// <param name="EntriesValid">The entry array it points at passed its CRC.</param>
/// <param name="DiskGuid">DiskGUID as stored.</param>
/// <param name="UsedEntries">Used entries in its array (0 when the array is not valid).</param>
public sealed record FoundGptHeader(long Lba, string Role, bool HeaderValid, bool EntriesValid, Guid DiskGuid, int UsedEntries);

/// <summary>One entry of the proposed table, usable for GPT and (within its limits) MBR.</summary>
/// <param name="Index">Partition number (GPT slot; MBR 1..4).</param>
/// <param name="StartBytes">First byte.</param>
/// <param name="SizeBytes">Size in bytes (a multiple of 512).</param>
/// <param name="TypeName">"Linux LVM", ...</param>
/// <param name="GptTypeGuid">GPT partition type GUID.</param>
/// <param name="MbrType">MBR type byte as "0x8e".</param>
/// <param name="Name">GPT partition name.</param>
/// <param name="UniqueGuid">GPT unique partition GUID (kept from an old table, else new).</param>
/// <param name="Attributes">GPT attribute bits.</param>
/// <param name="Basis">Where start and size come from.</param>
public sealed record ProposedPartition(
    int Index,
    long StartBytes,
    long SizeBytes,
    string TypeName,
    Guid GptTypeGuid,
    string MbrType,
    string Name,
    Guid UniqueGuid,
    ulong Attributes,
    string Basis)
{
    public long FirstLba => StartBytes / 512;

    /// <summary>Inclusive last sector.</summary>
    public long LastLba => ((StartBytes + SizeBytes) / 512) - 1;
}

/// <summary>Scan statistics.</summary>
public sealed record PartitionScanStats(long ScannedBytes, double Seconds, double MegabytesPerSecond, int SignatureHits, bool HitLimitReached, int UnreadableRanges);

/// <summary>
/// Everything `vrescue partitions scan` learnt: the current table and its copies, what the disk holds by its
/// own signatures, and the table VRescue would write, with how sure it is.
/// </summary>
/// <param name="Source">The disk or image.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="Table">"gpt", "mbr" or "none": the table the current sectors describe.</param>
/// <param name="PrimaryValid">GPT primary (or MBR) passes its checks.</param>
/// <param name="BackupValid">GPT backup passes its checks.</param>
/// <param name="ProtectiveMbrValid">GPT only: sector 0 holds a protective MBR.</param>
/// <param name="Current">Partitions of the current table.</param>
/// <param name="GptHeaders">GPT headers found anywhere on the disk.</param>
/// <param name="Found">Objects found by their own signatures, in disk order.</param>
/// <param name="ProposedTable">"gpt" or "mbr": the table kind repair writes by default; "none" when nothing to write.</param>
/// <param name="ProposalSource">"current", "primary-gpt", "backup-gpt", "gpt-at-lba-N", "found", "none-needed", "none".</param>
/// <param name="NeedsRepair">True when the proposed table differs from what the disk has, or a copy is damaged.</param>
/// <param name="Confidence">"high", "medium", "low" or "none".</param>
/// <param name="Reasons">Why the proposal is what it is.</param>
/// <param name="Proposed">The proposed entries.</param>
/// <param name="DiskGuid">GPT disk GUID the repair would write (kept from an old header when there is one).</param>
/// <param name="Findings">What is wrong, with stable codes and absolute offsets.</param>
/// <param name="Scan">Scan statistics.</param>
public sealed record PartitionScanReport(
    string Source,
    long SizeBytes,
    string Table,
    bool PrimaryValid,
    bool BackupValid,
    bool? ProtectiveMbrValid,
    IReadOnlyList<PartitionInfo> Current,
    IReadOnlyList<FoundGptHeader> GptHeaders,
    IReadOnlyList<FoundPartition> Found,
    string ProposedTable,
    string ProposalSource,
    bool NeedsRepair,
    string Confidence,
    IReadOnlyList<string> Reasons,
    IReadOnlyList<ProposedPartition> Proposed,
    Guid? DiskGuid,
    IReadOnlyList<Finding> Findings,
    PartitionScanStats Scan);
