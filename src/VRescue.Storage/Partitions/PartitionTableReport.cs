// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Storage.Partitions;

/// <summary>Which partition table a disk carries.</summary>
public enum PartitionTableKind
{
    /// <summary>No table: a whole-disk PV or filesystem, or blank space.</summary>
    None,
    Mbr,
    Gpt,
}

/// <summary>One partition, in absolute bytes of the disk it was read from.</summary>
/// <param name="Index">Linux partition number: GPT slot (1-based), MBR 1..4, logical partitions from 5.</param>
/// <param name="StartBytes">Absolute offset of the first byte.</param>
/// <param name="SizeBytes">Size as the table states it; it may run past the end of a truncated image.</param>
/// <param name="TypeName">"Linux LVM", "Linux filesystem", ..., or "Unknown".</param>
/// <param name="TypeCode">sgdisk code ("8e00") or the GUID for GPT; "0x8e" style for MBR.</param>
/// <param name="TypeGuid">GPT partition type GUID; null for MBR.</param>
/// <param name="Name">GPT partition name; null for MBR.</param>
/// <param name="UniqueGuid">GPT unique partition GUID; null for MBR.</param>
public sealed record PartitionInfo(
    int Index,
    long StartBytes,
    long SizeBytes,
    string TypeName,
    string TypeCode,
    Guid? TypeGuid = null,
    string? Name = null,
    Guid? UniqueGuid = null);

/// <summary>What <see cref="PartitionTableReader.Read"/> found.</summary>
/// <param name="Kind">The table in use.</param>
/// <param name="PrimaryValid">The primary table passed its integrity checks (GPT: signature, header and entry array
/// CRCs, bounds; MBR: boot signature).</param>
/// <param name="BackupValid">GPT only: the backup header and array passed the same checks. False for MBR (which has
/// no backup) and for None.</param>
/// <param name="Partitions">Partitions of the table in use, in table order.</param>
/// <param name="Findings">Everything noticed, with absolute byte offsets.</param>
public sealed record PartitionTableReport(
    PartitionTableKind Kind,
    bool PrimaryValid,
    bool BackupValid,
    IReadOnlyList<PartitionInfo> Partitions,
    IReadOnlyList<Finding> Findings);
