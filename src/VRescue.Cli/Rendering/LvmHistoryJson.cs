// SPDX-License-Identifier: MIT
using VRescue.Recovery.Lvm;

namespace VRescue.Cli.Rendering;

/// <summary>The --json document of `vrescue lvm history` (schema: docs/json/lvm-history.md).</summary>
public sealed record LvmHistoryJson(
    IReadOnlyList<LvmHistoryJson.Pv> Pvs,
    IReadOnlyList<LvmHistoryJson.Vg> Vgs,
    IReadOnlyList<string> BackupFiles,
    IReadOnlyList<LvmHistoryJson.FindingJson> Findings)
{
    public sealed record Pv(string Source, long DiskOffsetBytes, string? PvUuid, int? LabelSector, IReadOnlyList<Area> Mdas, int Copies);

    public sealed record Area(int Index, long HeaderOffsetBytes, long SizeBytes, string FoundBy, bool HeaderValid);

    public sealed record Vg(string VgName, string VgId, bool NameShared, int VersionCount, long? CommittedSeqno,
        IReadOnlyList<Version> Versions, IReadOnlyList<LvmLostVolume> LostVolumes, IReadOnlyDictionary<string, string> VdiNames);

    public sealed record Version(
        int Index, long Seqno, string Crc, string Source, string Where, long OffsetBytes, int LengthBytes, bool Wrapped, bool Committed,
        long? CreationTime, string? CreationTimeUtc, string? Description, string? CreationHost, IReadOnlyList<string> LvNames,
        IReadOnlyList<string> Added, IReadOnlyList<string> Removed, IReadOnlyList<string> Resized, IReadOnlyList<string> Renamed,
        IReadOnlyList<LvmVolumeChange> Changes, IReadOnlyList<Location> Locations);

    public sealed record Location(string Source, string Where, long OffsetBytes, int LengthBytes, bool Wrapped, bool Committed, bool Precommitted);

    public sealed record FindingJson(string Source, string Code, string Severity, string Message, long? OffsetBytes);

    public static LvmHistoryJson From(LvmHistory h) => new(
        h.Pvs.Select(p => new Pv(p.Disk.Name, p.DiskOffsetBytes, p.LabelPvUuid, (int?)p.Scan.Label?.SectorNumber,
            p.Scan.Areas.Select(a => new Area(a.Index, p.DiskOffsetBytes + a.HeaderOffsetBytes, a.SizeBytes, a.Source.ToString().ToLowerInvariant(), a.HeaderValid)).ToList(),
            p.Scan.Copies.Count)).ToList(),
        h.Vgs.Select(v => new Vg(v.VgName, v.VgId, v.NameShared, v.Versions.Count, v.Versions.LastOrDefault(x => x.Committed)?.Seqno,
            v.Versions.Select(Map).ToList(), v.LostVolumes, v.VdiNames.ToDictionary(n => n.Key.ToString(), n => n.Value))).ToList(),
        h.BackupFiles,
        h.Findings.Select(f => new FindingJson(f.Source, f.Finding.Code, f.Finding.Severity.ToString().ToLowerInvariant(), f.Finding.Message, f.Finding.OffsetBytes)).ToList());

    private static Version Map(LvmVgVersion v)
    {
        var first = v.Locations.FirstOrDefault(l => l.Committed) ?? v.Locations[0];
        List<string> Names(LvmChangeKind k) => v.Changes.Where(c => c.Kind == k).Select(c => c.LvName).ToList();
        return new Version(v.Index, v.Seqno, v.CrcText, first.Source, first.Where, first.OffsetBytes, first.LengthBytes, first.Wrapped, v.Committed,
            v.CreationTimeUnix, Time(v.CreationTimeUnix), v.Description, v.Metadata.Trailer.CreationHost,
            v.VolumeGroup.LogicalVolumes.Select(l => l.Name).ToList(),
            Names(LvmChangeKind.Added), Names(LvmChangeKind.Removed), Names(LvmChangeKind.Resized), Names(LvmChangeKind.Renamed),
            v.Changes,
            v.Locations.Select(l => new Location(l.Source, l.Where, l.OffsetBytes, l.LengthBytes, l.Wrapped, l.Committed, l.Precommitted)).ToList());
    }

    internal static string? Time(long? unix) =>
        unix is { } t && t is > 0 and < 253402300800 ? DateTimeOffset.FromUnixTimeSeconds(t).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture) : null;
}
