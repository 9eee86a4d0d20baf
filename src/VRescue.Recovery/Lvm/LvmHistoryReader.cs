// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Formats.Xen;
using VRescue.Storage;
using VRescue.Storage.Lvm;
using VRescue.Storage.Partitions;
using VRescue.Storage.Volumes;

namespace VRescue.Recovery.Lvm;

/// <summary>
/// Builds the metadata history of every VG on the sources (read-only) and in backup/archive files: finds PVs
/// (whole disk or partitions), scans every ring and the PV head, keys versions by VG uuid + seqno + CRC, orders
/// them by ring write order (then creation time), and says what changed between versions in XenServer terms with
/// VDI names from the MGT volume.
/// </summary>
public static class LvmHistoryReader
{
    /// <summary>Largest backup/archive file read (real ones are a few KiB to a few MiB).</summary>
    public const long MaxBackupFileBytes = 64L << 20;

    /// <summary>Most files read from one backup folder.</summary>
    public const int MaxBackupFiles = 100_000;

    public static LvmHistory Read(IReadOnlyList<IBlockSource> disks, IReadOnlyList<string>? backupPaths = null,
        IProgress<LvmScanProgress>? progress = null, CancellationToken cancel = default)
    {
        var findings = new List<(string, Finding)>();
        var pvs = new List<LvmHistoryPv>();
        for (var i = 0; i < disks.Count; i++)
        {
            pvs.AddRange(ScanDisk(disks[i], i, findings, progress, cancel));
        }

        var versions = new Dictionary<(string VgId, long Seqno, uint Crc), LvmVgVersion>();
        foreach (var pv in pvs)
        {
            foreach (var copy in pv.Scan.Copies)
            {
                var vg = copy.VolumeGroup;
                var key = (LvmUuid.Strip(vg.Id), vg.Seqno, copy.Crc);
                if (!versions.TryGetValue(key, out var v))
                {
                    versions[key] = v = new LvmVgVersion
                    {
                        VgName = vg.Name, VgId = vg.Id, Seqno = vg.Seqno, Crc = copy.Crc, Text = copy.Text, Metadata = copy.Metadata, Locations = [],
                    };
                }

                v.Locations.Add(new LvmVersionLocation
                {
                    Source = pv.Disk.Name,
                    Where = copy.Area is { } a ? $"mda{a.Index}" : "raw",
                    OffsetBytes = checked(pv.DiskOffsetBytes + copy.OffsetBytes),
                    LengthBytes = copy.LengthBytes,
                    Wrapped = copy.Wrapped,
                    Committed = copy.Committed,
                    Precommitted = copy.Precommitted,
                    Pv = pv,
                    Copy = copy,
                });
            }
        }

        var backupFiles = new List<string>();
        foreach (var path in backupPaths ?? [])
        {
            ReadBackups(path, versions, backupFiles, findings, cancel);
        }

        var vgs = versions.Values.GroupBy(v => LvmUuid.Strip(v.VgId))
            .Select(g => BuildVg(g.ToList(), pvs, findings))
            .OrderBy(h => h.VgName, StringComparer.Ordinal).ThenBy(h => h.Versions[^1].CreationTimeUnix)
            .ToList();
        foreach (var h in vgs)
        {
            h.NameShared = vgs.Count(o => o.VgName == h.VgName) > 1;
        }

        return new LvmHistory { Pvs = pvs, Vgs = vgs, BackupFiles = backupFiles, Findings = findings };
    }

    /// <summary>
    /// The scanned PV that holds <paramref name="meta"/> of <paramref name="version"/>: by label UUID, else (label
    /// gone) the PV whose rings hold this VG when the VG has one PV, else the one whose size matches dev_size.
    /// </summary>
    public static LvmHistoryPv? ResolvePv(LvmVgHistory vg, LvmVgVersion version, LvmPhysicalVolume meta, IReadOnlyList<LvmHistoryPv> pvs)
    {
        var id = LvmUuid.Strip(meta.Id);
        if (pvs.FirstOrDefault(p => p.LabelPvUuid is { } u && LvmUuid.Strip(u) == id) is { } byLabel)
        {
            return byLabel;
        }

        var holders = vg.Versions.SelectMany(v => v.Locations).Where(l => l.Pv is { LabelPvUuid: null }).Select(l => l.Pv!).Distinct().ToList();
        if (version.VolumeGroup.PhysicalVolumes.Count == 1 && holders.Count == 1)
        {
            return holders[0];
        }

        var bySize = holders.Where(p => meta.DevSizeSectors is { } s && s * 512 == p.View.LengthBytes).ToList();
        return bySize.Count == 1 ? bySize[0] : null;
    }

    private static IEnumerable<LvmHistoryPv> ScanDisk(IBlockSource disk, int index, List<(string, Finding)> findings,
        IProgress<LvmScanProgress>? progress, CancellationToken cancel)
    {
        if (disk.LengthBytes < 8 * 1024)
        {
            findings.Add((disk.Name, new Finding("LVM_HISTORY_SOURCE_TOO_SMALL", Severity.Error,
                $"{disk.Name} has {disk.LengthBytes} bytes: too small to hold an LVM PV", 0)));
            yield break;
        }

        var table = PartitionTableReader.Read(disk);
        var starts = table.Kind == PartitionTableKind.None
            ? [(0L, disk.LengthBytes)]
            : table.Partitions.Select(p => (p.StartBytes, p.SizeBytes)).ToList();
        var any = false;
        foreach (var (start, size) in starts)
        {
            var pv = ScanAt(disk, index, start, size, findings, progress, cancel);
            if (pv.Scan.Copies.Count > 0 || pv.Scan.Label is not null || pv.Scan.Areas.Count > 0)
            {
                any = true;
                yield return pv;
            }
        }

        if (!any && table.Kind != PartitionTableKind.None)
        {
            // The partition table may be stale (an SR created over a partitioned disk): look at the whole disk too.
            var whole = ScanAt(disk, index, 0, disk.LengthBytes, findings, progress, cancel);
            if (whole.Scan.Copies.Count > 0 || whole.Scan.Label is not null)
            {
                any = true;
                yield return whole;
            }
        }

        if (!any)
        {
            findings.Add((disk.Name, new Finding("LVM_HISTORY_NOTHING_FOUND", Severity.Error,
                $"no LVM label, metadata area header or VG text found on {disk.Name}", 0)));
        }
    }

    private static LvmHistoryPv ScanAt(IBlockSource disk, int index, long start, long size, List<(string, Finding)> findings,
        IProgress<LvmScanProgress>? progress, CancellationToken cancel)
    {
        var view = disk.Slice(start, size, start == 0 ? disk.Name : $"{disk.Name}@{start}");
        var scan = LvmMetadataScanner.Scan(view, progress, cancel);
        foreach (var f in scan.Findings)
        {
            findings.Add((disk.Name, f.Rebase(start)));
        }

        return new LvmHistoryPv { Disk = disk, DiskIndex = index, DiskOffsetBytes = start, View = view, Scan = scan };
    }

    private static void ReadBackups(string path, Dictionary<(string, long, uint), LvmVgVersion> versions, List<string> files,
        List<(string, Finding)> findings, CancellationToken cancel)
    {
        IEnumerable<string> candidates;
        if (Directory.Exists(path))
        {
            candidates = Directory.EnumerateFiles(path, "*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 4, IgnoreInaccessible = true })
                .Order(StringComparer.Ordinal).Take(MaxBackupFiles);
        }
        else if (File.Exists(path))
        {
            candidates = [path];
        }
        else
        {
            throw new FileNotFoundException($"backup path '{path}' does not exist", path);
        }

        foreach (var file in candidates)
        {
            cancel.ThrowIfCancellationRequested();
            var length = new FileInfo(file).Length;
            if (length > MaxBackupFileBytes)
            {
                findings.Add((file, new Finding("LVM_BACKUP_TOO_LARGE", Severity.Warning,
                    $"{file} has {length} bytes, more than the {MaxBackupFileBytes} an LVM backup can plausibly have; skipped", 0)));
                continue;
            }

            var bytes = File.ReadAllBytes(file);
            var metadata = LvmMetadata.Parse(bytes);
            var syntax = metadata.Findings.FirstOrDefault(f => f.Severity == Severity.Error && f.Code.StartsWith("LVM_TEXT_", StringComparison.Ordinal));
            if (metadata.VolumeGroup is not { } vg || syntax is not null || metadata.Trailer.Contents != LvmMetadata.ContentsValue)
            {
                if (!Directory.Exists(path) || bytes.AsSpan().IndexOf("Text Format Volume Group"u8) >= 0)
                {
                    findings.Add((file, new Finding("LVM_BACKUP_UNPARSABLE", Severity.Warning,
                        $"{file} is not usable LVM backup text: {syntax?.Message ?? (metadata.VolumeGroup is null ? "no VG section" : "no 'contents = \"Text Format Volume Group\"'")}",
                        syntax?.OffsetBytes ?? 0)));
                }

                continue;
            }

            files.Add(file);
            var location = new LvmVersionLocation
            {
                Source = file, Where = "backup", OffsetBytes = 0, LengthBytes = bytes.Length, Wrapped = false, Committed = false, Precommitted = false,
            };

            // A backup has the same VG content as the ring copy of its seqno in another layout: attach it there.
            var canonical = Canonical(vg);
            var same = versions.Values.FirstOrDefault(v =>
                LvmUuid.Strip(v.VgId) == LvmUuid.Strip(vg.Id) && v.Seqno == vg.Seqno && Canonical(v.VolumeGroup) == canonical);
            if (same is not null)
            {
                same.Locations.Add(location);
                continue;
            }

            var key = (LvmUuid.Strip(vg.Id), vg.Seqno, LvmCrc.Compute(bytes));
            if (!versions.TryGetValue(key, out var v))
            {
                versions[key] = v = new LvmVgVersion
                {
                    VgName = vg.Name, VgId = vg.Id, Seqno = vg.Seqno, Crc = key.Item3, Text = bytes, Metadata = metadata, Locations = [],
                };
            }

            v.Locations.Add(location);
        }
    }

    /// <summary>The VG section alone in on-disk form: equal for the same VG content whatever the text layout.</summary>
    internal static string Canonical(LvmVolumeGroup vg)
    {
        var root = new LvmConfigSection("");
        root.Add(new LvmConfigNode(vg.Section));
        return LvmMetadataWriter.WriteOnDisk(root);
    }

    private static LvmVgHistory BuildVg(List<LvmVgVersion> versions, List<LvmHistoryPv> pvs, List<(string, Finding)> findings)
    {
        var ordered = Order(versions);
        for (var i = 0; i < ordered.Count; i++)
        {
            ordered[i].Index = i;
        }

        var newest = ordered[^1];
        var draft = new LvmVgHistory
        {
            VgName = newest.VgName, VgId = newest.VgId, Versions = ordered, VdiNames = new Dictionary<Guid, string>(), LostVolumes = [],
        };
        var names = ReadNames(draft, pvs, findings);
        for (var i = 1; i < ordered.Count; i++)
        {
            ordered[i].Changes = Diff(ordered[i - 1], ordered[i], names);
        }

        return new LvmVgHistory
        {
            VgName = newest.VgName, VgId = newest.VgId, Versions = ordered, VdiNames = names, LostVolumes = Lost(ordered, names),
        };
    }

    /// <summary>
    /// Ring write order of the ring holding most versions (LVM writes copies one after another around the ring), then
    /// versions seen elsewhere (other rings, backups) placed by creation time and seqno.
    /// </summary>
    private static List<LvmVgVersion> Order(List<LvmVgVersion> versions)
    {
        var rings = versions.SelectMany(v => v.Locations.Where(l => l.Copy is not null).Select(l => (Ring: (l.Pv!, l.Copy!.Area?.HeaderOffsetBytes ?? -1), Version: v, l.Copy!.WriteOrder)))
            .GroupBy(x => x.Ring).OrderByDescending(g => g.Select(x => x.Version).Distinct().Count()).FirstOrDefault();
        var result = rings is null ? [] : rings.GroupBy(x => x.Version).Select(g => (V: g.Key, Order: g.Max(x => x.WriteOrder)))
            .OrderBy(x => x.Order).Select(x => x.V).ToList();
        var placed = result.ToHashSet();
        foreach (var v in versions.Where(v => !placed.Contains(v)).OrderBy(Key))
        {
            var j = result.FindLastIndex(r => Key(r).CompareTo(Key(v)) <= 0);
            result.Insert(j + 1, v);
        }

        return result;

        static (long, long, string) Key(LvmVgVersion v) => (v.CreationTimeUnix ?? 0, v.Seqno, v.CrcText);
    }

    private static Dictionary<Guid, string> ReadNames(LvmVgHistory vg, List<LvmHistoryPv> pvs, List<(string, Finding)> findings)
    {
        var names = new Dictionary<Guid, string>();
        var version = vg.Versions.LastOrDefault(v => v.VolumeGroup.FindLogicalVolume(XenLvName.MgtName) is not null);
        if (version is null || version.VolumeGroup.ExtentSizeBytes <= 0)
        {
            return names;
        }

        var lv = version.VolumeGroup.FindLogicalVolume(XenLvName.MgtName)!;
        var extentBytes = version.VolumeGroup.ExtentSizeBytes;
        var runs = new List<ExtentRun>();
        foreach (var seg in lv.Segments.Where(s => s.IsSupported && s.Stripes.Count == 1 &&
            ExtentRun.IsAddressable(s.StartExtent, s.ExtentCount, s.Stripes[0].PeStart, extentBytes)))
        {
            if (version.VolumeGroup.FindPhysicalVolume(seg.Stripes[0].PvKey) is { } meta && ResolvePv(vg, version, meta, pvs) is { } pv)
            {
                runs.Add(new ExtentRun(seg.StartExtent, seg.ExtentCount, pv.View, meta.PeStartBytes, seg.Stripes[0].PeStart));
            }
        }

        if (runs.Count == 0)
        {
            return names;
        }

        try
        {
            // extent_count is the segments' sum as written (-1 in a damaged text): cut to what bytes address.
            var source = new ExtentMappedSource("LV MGT", extentBytes, Math.Clamp(lv.ExtentCount, 0, long.MaxValue / extentBytes), runs);
            var sector0 = new byte[512];
            source.ReadExactlyAt(0, sector0);
            var length = (int)Math.Min(XenMgtVolume.BytesToRead(sector0), source.LengthBytes);
            var mgt = XenMgtVolume.Decode(source.ReadBytes(0, length));

            // Live records first, then deleted ones (names of deleted VDIs are what this command is for).
            foreach (var r in mgt.Records.Where(r => r.Uuid is not null && r.NameLabel is not null).OrderBy(r => r.IsDeleted).ThenBy(r => !r.WithinHeaderLength))
            {
                names.TryAdd(r.Uuid!.Value, r.NameLabel!);
            }
        }
        catch (Exception e) when (e is SourceReadException or CorruptDataException or OverflowException)
        {
            findings.Add((vg.VgName, new Finding("LVM_HISTORY_MGT_UNREADABLE", Severity.Warning,
                $"the MGT volume of {vg.VgName} (seqno {version.Seqno}) is unreadable, VDI names are unknown: {e.Message}")));
        }

        return names;
    }

    private static List<LvmVolumeChange> Diff(LvmVgVersion previous, LvmVgVersion current, IReadOnlyDictionary<Guid, string> names)
    {
        var before = previous.VolumeGroup.LogicalVolumes.GroupBy(l => LvmUuid.Strip(l.Id)).ToDictionary(g => g.Key, g => g.First());
        var after = current.VolumeGroup.LogicalVolumes.GroupBy(l => LvmUuid.Strip(l.Id)).ToDictionary(g => g.Key, g => g.First());
        var extentBytes = current.VolumeGroup.ExtentSizeBytes;
        var changes = new List<LvmVolumeChange>();
        foreach (var (id, lv) in after)
        {
            var size = lv.ExtentCount * extentBytes;
            if (!before.TryGetValue(id, out var old))
            {
                changes.Add(Change(LvmChangeKind.Added, lv, null, null, size, names, "created"));
                continue;
            }

            var oldSize = old.ExtentCount * previous.VolumeGroup.ExtentSizeBytes;
            if (old.Name != lv.Name)
            {
                changes.Add(Change(LvmChangeKind.Renamed, lv, old.Name, oldSize, size, names, RenameMeaning(old.Name, lv.Name, names)));
            }

            if (old.ExtentCount != lv.ExtentCount)
            {
                changes.Add(Change(LvmChangeKind.Resized, lv, old.Name, oldSize, size, names,
                    $"resized from {oldSize} to {size} bytes ({(size > oldSize ? "inflated/extended" : "deflated/reduced")})"));
            }
            else if (Extents(previous, old) != Extents(current, lv))
            {
                changes.Add(Change(LvmChangeKind.Moved, lv, old.Name, oldSize, size, names, "extents moved (pvmove or rewrite)"));
            }
        }

        foreach (var (id, lv) in before.Where(b => !after.ContainsKey(b.Key)))
        {
            changes.Add(Change(LvmChangeKind.Removed, lv, null, lv.ExtentCount * previous.VolumeGroup.ExtentSizeBytes, null, names, "deleted (LV removed)"));
        }

        return changes;
    }

    private static string Extents(LvmVgVersion v, LvmLogicalVolume lv) =>
        string.Join(";", lv.Segments.Select(s => $"{s.StartExtent}+{s.ExtentCount}:" + string.Join(",", s.Stripes.Select(st =>
            $"{v.VolumeGroup.FindPhysicalVolume(st.PvKey)?.Id ?? st.PvKey}@{st.PeStart}"))));

    private static LvmVolumeChange Change(LvmChangeKind kind, LvmLogicalVolume lv, string? previousName, long? previousSize, long? size,
        IReadOnlyDictionary<Guid, string> names, string what)
    {
        var n = XenLvName.Parse(lv.Name);
        var name = n.VdiUuid is { } u && names.TryGetValue(u, out var label) ? label : null;
        return new LvmVolumeChange(kind, lv.Name, lv.Id, previousName, previousSize, size, n.VdiUuid?.ToString(), name,
            $"{Subject(lv.Name, names)} {what}");
    }

    /// <summary>"VDI "name" (uuid)", "MGT volume", "journal LV x", or "LV x".</summary>
    public static string Subject(string lvName, IReadOnlyDictionary<Guid, string> names)
    {
        var n = XenLvName.Parse(lvName);
        var label = n.VdiUuid is { } u && names.TryGetValue(u, out var l) ? $"\"{l}\" " : "";
        return n.Kind switch
        {
            XenLvKind.VhdVdi => $"VDI {label}({n.VdiUuid}, VHD LV {lvName})",
            XenLvKind.RawVdi => $"VDI {label}({n.VdiUuid}, raw LV {lvName})",
            XenLvKind.Qcow2Vdi => $"VDI {label}({n.VdiUuid}, QCOW2 LV {lvName})",
            XenLvKind.OldLeaf => $"obsolete leaf of VDI {label}({n.VdiUuid}, LV {lvName})",
            XenLvKind.Mgt => "MGT volume",
            XenLvKind.Journal => $"journal LV {lvName}",
            XenLvKind.VhdResizeJournal => $"resize journal LV {lvName}",
            XenLvKind.CbtLog => $"CBT log LV {lvName}",
            XenLvKind.TrimLv => $"trim LV {lvName}",
            _ => $"LV {lvName}",
        };
    }

    /// <summary>What a rename means on an LVHD SR (sm cleanup.py leaf-coalesce, LVHDSR.py snapshot).</summary>
    private static string RenameMeaning(string from, string to, IReadOnlyDictionary<Guid, string> names)
    {
        var a = XenLvName.Parse(from);
        var b = XenLvName.Parse(to);
        if (b.Kind == XenLvKind.OldLeaf)
        {
            return $"renamed from {from}: leaf-coalesce retired this leaf (VHD-OLD_)";
        }

        if (a.Kind == XenLvKind.OldLeaf)
        {
            return $"renamed back from {from}: an interrupted leaf-coalesce was undone";
        }

        if (a.Kind is XenLvKind.VhdVdi or XenLvKind.RawVdi && b.Kind == a.Kind && a.VdiUuid != b.VdiUuid)
        {
            var fromLabel = a.VdiUuid is { } u && names.TryGetValue(u, out var l) ? $" \"{l}\"" : "";
            return $"renamed from {from}: the data of VDI{fromLabel} ({a.VdiUuid}) now lives here (snapshot/clone made it a base copy, or leaf-coalesce moved the VDI into its parent)";
        }

        return $"renamed from {from}";
    }

    private static List<LvmLostVolume> Lost(List<LvmVgVersion> ordered, IReadOnlyDictionary<Guid, string> names)
    {
        var newest = ordered[^1].VolumeGroup.LogicalVolumes.Select(l => LvmUuid.Strip(l.Id)).ToHashSet();
        var lost = new List<LvmLostVolume>();
        var seen = new HashSet<string>();
        for (var i = ordered.Count - 1; i >= 0; i--)
        {
            foreach (var lv in ordered[i].VolumeGroup.LogicalVolumes)
            {
                var id = LvmUuid.Strip(lv.Id);
                if (newest.Contains(id) || !seen.Add(id))
                {
                    continue;
                }

                var removedIn = i + 1 < ordered.Count ? ordered[i + 1].Seqno : (long?)null;
                var n = XenLvName.Parse(lv.Name);
                var label = n.VdiUuid is { } u && names.TryGetValue(u, out var l) ? l : null;
                var subject = n.VdiUuid is not null ? $"VDI {(label is null ? "" : $"\"{label}\" ")}({n.VdiUuid})" : Subject(lv.Name, names);
                lost.Add(new LvmLostVolume(lv.Name, lv.Id, n.VdiUuid?.ToString(), label, lv.ExtentCount * ordered[i].VolumeGroup.ExtentSizeBytes,
                    ordered[i].Seqno, ordered[i].CrcText, removedIn,
                    $"{subject} last seen in seqno {ordered[i].Seqno}, deleted in {removedIn?.ToString() ?? "a later version not found"}."));
            }
        }

        lost.Reverse();
        return lost;
    }
}
