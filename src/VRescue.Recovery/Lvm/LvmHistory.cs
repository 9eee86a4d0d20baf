// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Storage;
using VRescue.Storage.Lvm;

namespace VRescue.Recovery.Lvm;

/// <summary>A PV candidate that was scanned: where it is on which disk, and what the scan found.</summary>
public sealed class LvmHistoryPv
{
    /// <summary>The disk (image or device) as given by the user.</summary>
    public required IBlockSource Disk { get; init; }

    /// <summary>Index of <see cref="Disk"/> among the sources.</summary>
    public required int DiskIndex { get; init; }

    /// <summary>Where the PV starts on the disk (partition start, or 0).</summary>
    public required long DiskOffsetBytes { get; init; }

    /// <summary>The PV's bytes (a view of <see cref="Disk"/> from <see cref="DiskOffsetBytes"/>).</summary>
    public required IBlockSource View { get; init; }

    public required LvmMetadataScanReport Scan { get; init; }

    /// <summary>PV UUID (dashed) from a label LVM accepts; null when the label is missing or invalid.</summary>
    public string? LabelPvUuid => Scan.Label is { IsAcceptedByLvm: true } l ? l.PvUuidFormatted : null;
}

/// <summary>Where one version was found: a ring copy on a PV, or a backup/archive file.</summary>
public sealed class LvmVersionLocation
{
    /// <summary>Disk path, or the backup file path.</summary>
    public required string Source { get; init; }

    /// <summary>"mda1", "mda2", "raw" (outside any known ring) or "backup".</summary>
    public required string Where { get; init; }

    /// <summary>Absolute offset of the text's first byte on <see cref="Source"/> (0 for a backup file).</summary>
    public required long OffsetBytes { get; init; }

    public required int LengthBytes { get; init; }

    public required bool Wrapped { get; init; }

    /// <summary>A valid mda header's raw_locn[0] points at this copy.</summary>
    public required bool Committed { get; init; }

    public required bool Precommitted { get; init; }

    /// <summary>The scanned PV (null for backup files).</summary>
    public LvmHistoryPv? Pv { get; init; }

    /// <summary>The ring copy (null for backup files).</summary>
    public LvmTextCopy? Copy { get; init; }
}

/// <summary>What happened to one LV between a version and the one before it.</summary>
public enum LvmChangeKind
{
    Added,
    Removed,
    Resized,
    Renamed,
    Moved,
}

/// <summary>One LV change, with XenServer meaning when the name carries a VDI uuid.</summary>
public sealed record LvmVolumeChange(
    LvmChangeKind Kind,
    string LvName,
    string LvId,
    string? PreviousLvName,
    long? PreviousSizeBytes,
    long? SizeBytes,
    string? VdiUuid,
    string? VdiName,
    string Description);

/// <summary>One distinct VG text: identified by VG uuid + seqno + CRC (seqno alone repeats after vgcfgrestore).</summary>
public sealed class LvmVgVersion
{
    public required string VgName { get; init; }
    public required string VgId { get; init; }
    public required long Seqno { get; init; }

    /// <summary>LVM CRC of the text as stored (NUL included); for a backup file, of the file's bytes.</summary>
    public required uint Crc { get; init; }

    /// <summary>The text as found (on-disk form with NUL, or the backup file's bytes).</summary>
    public required byte[] Text { get; init; }

    public required LvmMetadata Metadata { get; init; }

    public LvmVolumeGroup VolumeGroup => Metadata.VolumeGroup!;

    /// <summary>Every place this exact text was found.</summary>
    public required List<LvmVersionLocation> Locations { get; init; }

    /// <summary>True when a valid mda header commits this copy somewhere.</summary>
    public bool Committed => Locations.Any(l => l.Committed);

    /// <summary>Trailer creation_time (unix seconds).</summary>
    public long? CreationTimeUnix => Metadata.Trailer.CreationTimeUnix;

    public string? Description => Metadata.Trailer.Description;

    /// <summary>Position in the VG's timeline (0 = oldest).</summary>
    public int Index { get; internal set; }

    /// <summary>Changes relative to the previous version in the timeline (empty for the first).</summary>
    public IReadOnlyList<LvmVolumeChange> Changes { get; internal set; } = [];

    /// <summary>Text of the <see cref="Crc"/> as pvck prints it (8 hex digits, lower case).</summary>
    public string CrcText => Crc.ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>An LV that exists in some version but not in the newest one.</summary>
public sealed record LvmLostVolume(
    string LvName,
    string LvId,
    string? VdiUuid,
    string? VdiName,
    long SizeBytes,
    long LastSeenSeqno,
    string LastSeenCrc,
    long? RemovedInSeqno,
    string Description);

/// <summary>The timeline of one VG (by VG uuid).</summary>
public sealed class LvmVgHistory
{
    public required string VgName { get; init; }
    public required string VgId { get; init; }

    /// <summary>Versions oldest first.</summary>
    public required IReadOnlyList<LvmVgVersion> Versions { get; init; }

    /// <summary>VDI names by uuid, from the MGT volume (deleted records included).</summary>
    public required IReadOnlyDictionary<Guid, string> VdiNames { get; init; }

    /// <summary>LVs that older versions have and the newest does not: what a restore can bring back.</summary>
    public required IReadOnlyList<LvmLostVolume> LostVolumes { get; init; }

    /// <summary>Another VG with the same name exists among the findings (an SR re-created on the same device).</summary>
    public bool NameShared { get; internal set; }
}

/// <summary>All VGs found on the sources and in the backup files.</summary>
public sealed class LvmHistory
{
    public required IReadOnlyList<LvmHistoryPv> Pvs { get; init; }
    public required IReadOnlyList<LvmVgHistory> Vgs { get; init; }
    public required IReadOnlyList<string> BackupFiles { get; init; }

    /// <summary>Findings from scanning and from backup files, with the source named.</summary>
    public required IReadOnlyList<(string Source, Finding Finding)> Findings { get; init; }

    /// <summary>
    /// The versions of VG <paramref name="vg"/> (name or uuid) with <paramref name="seqno"/>, optionally narrowed by
    /// CRC (hex, with or without 0x). Throws <see cref="LvmVersionSelectionException"/> when none or several match.
    /// </summary>
    public (LvmVgHistory Vg, LvmVgVersion Version) Select(string vg, long seqno, string? crc)
    {
        var vgs = Vgs.Where(v => v.VgName == vg || v.VgId == vg || LvmUuid.Strip(v.VgId) == LvmUuid.Strip(vg)).ToList();
        if (vgs.Count == 0)
        {
            var known = Vgs.Count == 0 ? "none" : string.Join(", ", Vgs.Select(v => $"{v.VgName} ({v.VgId})"));
            throw new LvmVersionSelectionException($"no VG named or with uuid '{vg}' was found; VGs found: {known}");
        }

        if (vgs.Count > 1)
        {
            throw new LvmVersionSelectionException(
                $"several VGs are named '{vg}' (an SR re-created on the same device?): {string.Join(", ", vgs.Select(v => v.VgId))}; pass the VG uuid to --vg");
        }

        var h = vgs[0];
        var matches = h.Versions.Where(v => v.Seqno == seqno).ToList();
        if (crc is not null)
        {
            var want = crc.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? crc[2..] : crc;
            matches = matches.Where(v => string.Equals(v.CrcText, want.PadLeft(8, '0'), StringComparison.OrdinalIgnoreCase)).ToList();
        }

        if (matches.Count == 0)
        {
            throw new LvmVersionSelectionException(
                $"VG {h.VgName} has no version with seqno {seqno}{(crc is null ? "" : $" and crc {crc}")}; seqnos found: {string.Join(", ", h.Versions.Select(v => v.Seqno).Distinct())}");
        }

        if (matches.Count > 1)
        {
            throw new LvmVersionSelectionException(
                $"VG {h.VgName} has {matches.Count} different versions with seqno {seqno} (a vgcfgrestore rollback); choose one with --crc: " +
                string.Join(", ", matches.Select(m => $"{m.CrcText} ({Describe(m)})")));
        }

        return (h, matches[0]);
    }

    private static string Describe(LvmVgVersion v) =>
        $"{v.VolumeGroup.LogicalVolumes.Count} LVs, {v.Description ?? "no description"}";
}

/// <summary>The user's --vg/--seqno/--crc do not pick exactly one version.</summary>
public sealed class LvmVersionSelectionException(string message) : Exception(message);
