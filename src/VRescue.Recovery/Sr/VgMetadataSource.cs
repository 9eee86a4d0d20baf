// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Recovery.Lvm;
using VRescue.Recovery.Probe;
using VRescue.Storage;
using VRescue.Storage.Lvm;

namespace VRescue.Recovery.Sr;

/// <summary>Which LVM metadata an SR is assembled from.</summary>
public enum VgMetadataKind
{
    /// <summary>The committed metadata on the PVs (highest seqno over all metadata areas), as LVM would use it.</summary>
    Current,

    /// <summary>An older version kept in the metadata area ring buffer (`vrescue lvm history`).</summary>
    RingSeqno,

    /// <summary>A VG text file: vgcfgbackup output, /etc/lvm/backup or archive, or text saved by `lvm history`.</summary>
    BackupFile,
}

/// <summary>Names the metadata version an extent map came from; recorded per VDI in manifest.json and report.json.</summary>
/// <param name="Kind">Where the metadata comes from.</param>
/// <param name="Seqno">VG seqno of the version used (known after assembly; requested seqno for <see cref="VgMetadataKind.RingSeqno"/>).</param>
/// <param name="Path">Backup file path for <see cref="VgMetadataKind.BackupFile"/>.</param>
/// <param name="Crc">Text CRC of a ring version (seqnos can repeat after a vgcfgrestore).</param>
public sealed record VgMetadataChoice(VgMetadataKind Kind, long? Seqno = null, string? Path = null, string? Crc = null)
{
    public static VgMetadataChoice Current { get; } = new(VgMetadataKind.Current);

    /// <summary>"current", "ring", "backup-file" (stable, used in JSON).</summary>
    public string KindName => Kind switch
    {
        VgMetadataKind.Current => "current",
        VgMetadataKind.RingSeqno => "ring",
        VgMetadataKind.BackupFile => "backup-file",
        _ => Kind.ToString(),
    };

    public string Describe() => Kind switch
    {
        VgMetadataKind.Current => Seqno is { } s ? $"current metadata (seqno {s})" : "current metadata",
        VgMetadataKind.RingSeqno => $"metadata seqno {Seqno}{(Crc is null ? "" : $" (crc {Crc})")} from the metadata area ring",
        VgMetadataKind.BackupFile => Seqno is { } s ? $"backup file {Path} (seqno {s})" : $"backup file {Path}",
        _ => Kind.ToString(),
    };
}

/// <summary>A finding with the source it was found on.</summary>
public sealed record SourcedFinding(Finding Finding, string Source);

/// <summary>One VG version chosen by a metadata source, with the PVs found on the disks that belong to it.</summary>
public sealed record VgSelection(LvmVolumeGroup Vg, IReadOnlyList<SrPhysicalVolume> Members, VgMetadataChoice Choice, string SourceName,
    IReadOnlyList<SourcedFinding> Findings);

/// <summary>
/// Supplies the VG metadata an SR is assembled from. The PVs were already found on the disks (labels, metadata areas);
/// the source says which VG text describes their extents. Implementations: <see cref="CurrentVgMetadata"/>,
/// <see cref="BackupFileVgMetadata"/>; ring versions plug in here once `lvm history` reads them (issue 3).
/// </summary>
public interface IVgMetadataSource
{
    VgMetadataChoice Choice { get; }

    /// <summary>The VGs to assemble. Throws <see cref="VgMetadataUnavailableException"/> when the version cannot be had.</summary>
    IReadOnlyList<VgSelection> Select(IReadOnlyList<SrPhysicalVolume> pvs);
}

/// <summary>The requested metadata version does not exist or cannot be read; the message says why and what to try.</summary>
public sealed class VgMetadataUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>LVM's own choice: per VG, the highest seqno committed on any of its PVs (lib/metadata/metadata.c).</summary>
public sealed class CurrentVgMetadata : IVgMetadataSource
{
    public static CurrentVgMetadata Instance { get; } = new();

    public VgMetadataChoice Choice => VgMetadataChoice.Current;

    public IReadOnlyList<VgSelection> Select(IReadOnlyList<SrPhysicalVolume> pvs) =>
        pvs.Where(p => p.Report.Metadata?.VolumeGroup is not null)
            .GroupBy(p => p.Report.Metadata!.VolumeGroup!.Id)
            .Select(g =>
            {
                var members = g.ToList();
                var newest = members.MaxBy(p => p.Report.Metadata!.VolumeGroup!.Seqno)!;
                var vg = newest.Report.Metadata!.VolumeGroup!;
                var findings = members.Where(p => p.Report.Metadata!.VolumeGroup!.Seqno != vg.Seqno)
                    .Select(stale => new SourcedFinding(new Finding(ProbeFindingMap.SeqnoMismatch, Severity.Warning,
                        $"PV {stale.Report.PvUuid} carries seqno {stale.Report.Metadata!.VolumeGroup!.Seqno} of VG {vg.Name}, another PV has {vg.Seqno}: an interrupted metadata update",
                        stale.DiskOffsetBytes, "seqno", stale.Report.Metadata!.VolumeGroup!.Seqno.ToString(CultureInfo.InvariantCulture),
                        vg.Seqno.ToString(CultureInfo.InvariantCulture)), stale.Disk.Name))
                    .ToList();
                return new VgSelection(vg, members, Choice with { Seqno = vg.Seqno }, newest.Disk.Name, findings);
            })
            .ToList();
}

/// <summary>
/// A VG text file (vgcfgbackup / /etc/lvm/backup / archive), parsed with <see cref="LvmMetadata"/>. Its PVs are matched
/// to the disks by PV uuid (label), or by the VG uuid in a PV's own metadata area when the label is gone.
/// </summary>
public sealed class BackupFileVgMetadata : IVgMetadataSource
{
    /// <summary>VG text files are a few KiB to a few MiB; anything bigger is not one.</summary>
    public const long MaxFileBytes = 64L << 20;

    private readonly LvmMetadata _metadata;

    private BackupFileVgMetadata(string path, LvmMetadata metadata)
    {
        Path = path;
        _metadata = metadata;
        Choice = new VgMetadataChoice(VgMetadataKind.BackupFile, metadata.VolumeGroup?.Seqno, path);
    }

    public string Path { get; }

    public VgMetadataChoice Choice { get; }

    public LvmVolumeGroup VolumeGroup => _metadata.VolumeGroup!;

    /// <summary>Reads and parses <paramref name="path"/>; throws <see cref="VgMetadataUnavailableException"/> when it holds no VG.</summary>
    public static BackupFileVgMetadata Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (!info.Exists)
        {
            throw new VgMetadataUnavailableException($"backup file {full} does not exist");
        }

        if (info.Length > MaxFileBytes)
        {
            throw new VgMetadataUnavailableException($"{full} is {info.Length} bytes: too large for an LVM VG text file (at most {MaxFileBytes})");
        }

        var metadata = LvmMetadata.Parse(File.ReadAllBytes(full));
        if (metadata.VolumeGroup is null)
        {
            var why = metadata.Findings.FirstOrDefault(f => f.Severity == Severity.Error)?.Message ?? "no volume group section";
            throw new VgMetadataUnavailableException($"{full} is not an LVM VG backup: {why}");
        }

        return new BackupFileVgMetadata(full, metadata);
    }

    public IReadOnlyList<VgSelection> Select(IReadOnlyList<SrPhysicalVolume> pvs)
    {
        var vg = VolumeGroup;
        var members = PvMatching.ByLabel(vg, pvs);
        var findings = new List<SourcedFinding>();
        if (members.Count == 0)
        {
            findings.Add(new SourcedFinding(new Finding(ProbeFindingMap.PvMissing, Severity.Error,
                $"none of the PVs named in {Path} ({string.Join(", ", vg.PhysicalVolumes.Select(p => p.Id))}) is among the sources"), Path));
        }

        return [new VgSelection(vg, members, Choice, members.FirstOrDefault()?.Disk.Name ?? Path, findings)];
    }
}

/// <summary>
/// An older metadata version from the metadata area ring buffer (or any copy `vrescue lvm history` found on the
/// disks). Its PVs are matched to the disks by label uuid, else by the PV the version was found on (an SR re-created
/// on the same device has a new PV uuid but the old VG text still lies in its ring).
/// </summary>
public sealed class RingVgMetadata : IVgMetadataSource
{
    private readonly LvmVgVersion? _version;
    private readonly long _seqno;
    private readonly string? _crc;

    /// <summary>The version with <paramref name="seqno"/> (and <paramref name="crc"/> when seqnos repeat), read from the disks on Select.</summary>
    public RingVgMetadata(long seqno, string? crc = null)
    {
        _seqno = seqno;
        _crc = crc;
        Choice = new VgMetadataChoice(VgMetadataKind.RingSeqno, seqno);
    }

    /// <summary>A version already picked from a history.</summary>
    public RingVgMetadata(LvmVgVersion version)
    {
        _version = version;
        _seqno = version.Seqno;
        Choice = new VgMetadataChoice(VgMetadataKind.RingSeqno, version.Seqno, Crc: version.CrcText);
    }

    public VgMetadataChoice Choice { get; private set; }

    public IReadOnlyList<VgSelection> Select(IReadOnlyList<SrPhysicalVolume> pvs)
    {
        var version = _version ?? Pick(pvs);
        Choice = Choice with { Crc = version.CrcText };
        var vg = version.VolumeGroup;
        var foundOn = version.Locations.Where(l => l.Pv is not null).Select(l => (l.Pv!.Disk, l.Pv.DiskOffsetBytes)).ToHashSet();
        var byLabel = PvMatching.ByLabel(vg, pvs);
        var members = byLabel.Count > 0 || vg.PhysicalVolumes.Count != 1
            ? byLabel
            : pvs.Where(p => foundOn.Contains((p.Disk, p.DiskOffsetBytes))).Take(1).ToList();
        var findings = new List<SourcedFinding>();
        if (members.Count == 0)
        {
            findings.Add(new SourcedFinding(new Finding(ProbeFindingMap.PvMissing, Severity.Error,
                $"none of the PVs of {vg.Name} seqno {vg.Seqno} ({string.Join(", ", vg.PhysicalVolumes.Select(p => p.Id))}) is among the sources"),
                pvs.FirstOrDefault()?.Disk.Name ?? vg.Name));
        }

        return [new VgSelection(vg, members, Choice, members.FirstOrDefault()?.Disk.Name ?? vg.Name, findings)];
    }

    private LvmVgVersion Pick(IReadOnlyList<SrPhysicalVolume> pvs)
    {
        var disks = pvs.Select(p => p.Disk).Distinct().ToList();
        var history = LvmHistoryReader.Read(disks);
        var want = _crc is null ? null : (_crc.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? _crc[2..] : _crc).PadLeft(8, '0');
        var matches = history.Vgs.SelectMany(h => h.Versions)
            .Where(v => v.Seqno == _seqno && (want is null || string.Equals(v.CrcText, want, StringComparison.OrdinalIgnoreCase)))
            .ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new VgMetadataUnavailableException(
                $"no metadata version with seqno {_seqno}{(_crc is null ? "" : $" and crc {_crc}")} on the sources; `vrescue lvm history` lists the versions found: " +
                string.Join("; ", history.Vgs.Select(h => $"{h.VgName}: seqno {string.Join(",", h.Versions.Select(v => v.Seqno).Distinct())}"))),
            _ => throw new VgMetadataUnavailableException(
                $"{matches.Count} different versions have seqno {_seqno} (a vgcfgrestore rollback, or several VGs); choose one with --crc: " +
                string.Join(", ", matches.Select(m => $"{m.CrcText} ({m.VgName}, {m.VolumeGroup.LogicalVolumes.Count} LVs)"))),
        };
    }
}

/// <summary>How a VG text's PV entries are matched to PVs found on the disks.</summary>
internal static class PvMatching
{
    /// <summary>By PV uuid in the label; a PV without a label counts when its own metadata area names this VG uuid.</summary>
    public static List<SrPhysicalVolume> ByLabel(LvmVolumeGroup vg, IReadOnlyList<SrPhysicalVolume> pvs)
    {
        var ids = vg.PhysicalVolumes.Select(p => LvmUuid.Strip(p.Id)).ToHashSet();
        return pvs.Where(p => (p.Report.PvUuid is { } u && ids.Contains(LvmUuid.Strip(u)))
            || (p.Report.PvUuid is null && p.Report.Metadata?.VolumeGroup?.Id is { } id && LvmUuid.Strip(id) == LvmUuid.Strip(vg.Id))).ToList();
    }
}

/// <summary>A PV found on a disk: where, the view onto it, and what its label and metadata areas say.</summary>
public sealed record SrPhysicalVolume(IBlockSource Disk, long DiskOffsetBytes, IBlockSource View, LvmPhysicalVolumeReport Report);
