// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Formats.Lvm;
using VRescue.Formats.Vhd;
using VRescue.Formats.Xen;
using VRescue.Recovery.Probe;
using VRescue.Storage;
using VRescue.Storage.Lvm;
using VRescue.Storage.Partitions;
using VRescue.Storage.Vhd;
using VRescue.Storage.Volumes;

namespace VRescue.Recovery.Sr;

/// <summary>
/// Reads every layer it can from the sources (disk -> partition table -> PV -> VG -> LV -> VDI), opens every LV by its
/// extent map and every VHD, and says what is there and what is broken. The result is both the probe report and the
/// opened model export and recover read from. Read-only: only <see cref="IBlockSource"/> reads. Never stops at the
/// first problem. Which VG metadata describes the extents is the caller's choice (<see cref="IVgMetadataSource"/>).
/// </summary>
public static class SrAssembler
{
    private const int SectorBytes = 512;

    /// <summary>Where PVs are searched when no partition table entry leads to one: every MiB, and the old
    /// DOS alignment at sector 63. Bounded so a huge disk stays fast; `vrescue partitions scan` searches all.</summary>
    private const long QuickSearchStepBytes = 1 << 20;
    private const long QuickSearchLimitBytes = 64L << 30;

    /// <summary>Assembles the SRs on <paramref name="sources"/> from <paramref name="metadata"/> (default: the current metadata).</summary>
    /// <exception cref="VgMetadataUnavailableException">The metadata source cannot supply its version.</exception>
    public static AssembledSources Assemble(IReadOnlyList<IBlockSource> sources, IVgMetadataSource? metadata = null)
    {
        metadata ??= CurrentVgMetadata.Instance;
        var findings = new List<ProbeFinding>();
        var found = new List<SrPhysicalVolume>();
        var disks = sources.Select(s => ProbeDisk(s, found, findings)).ToList();
        var assembled = new List<AssembledSr>();
        foreach (var selection in metadata.Select(found))
        {
            foreach (var f in selection.Findings)
            {
                Add(findings, f.Finding, f.Source);
            }

            assembled.Add(ProbeVg(selection, found, findings));
        }

        var srs = assembled.Select(a => a.Probed).ToList();
        foreach (var pv in found.Where(p => p.Report.Metadata?.VolumeGroup is null && metadata.Choice.Kind == VgMetadataKind.Current))
        {
            Add(findings, new Finding(ProbeFindingMap.PvWithoutVg, Severity.Error,
                "PV has no readable VG metadata: the SR cannot be assembled from its current metadata", pv.DiskOffsetBytes), pv.Disk.Name);
        }

        var mode = ProbeFindingMap.Priority.FirstOrDefault(m => findings.Any(f => f.FailureMode == FailureModes.Name(m)), FailureMode.None);
        var report = new ProbeReport(disks.Select(d => d.Disk).ToList(), srs, findings, Diagnose(disks, srs, mode, findings), mode);
        return new AssembledSources(report, assembled);
    }

    private sealed record DiskResult(ProbedDisk Disk, string? ContentDescription);

    private static DiskResult ProbeDisk(IBlockSource disk, List<SrPhysicalVolume> found, List<ProbeFinding> findings)
    {
        if (disk.LengthBytes == 0)
        {
            Add(findings, new Finding(ProbeFindingMap.SourceEmpty, Severity.Error, "the source is empty (0 bytes)", 0), disk.Name);
            return new DiskResult(new ProbedDisk(disk.Name, 0, "none", null, null, [], [], "empty"), "empty source (0 bytes)");
        }

        if (disk.LengthBytes < 8 * 1024)
        {
            Add(findings, new Finding(ProbeFindingMap.SourceTooSmall, Severity.Error,
                $"the source is only {disk.LengthBytes} bytes: too small to hold an LVM PV (label and 4 KiB metadata header)", 0), disk.Name);
            return new DiskResult(new ProbedDisk(disk.Name, disk.LengthBytes, "none", null, null, [], [], "too small"), $"too small to be an SR ({disk.LengthBytes} bytes)");
        }

        var table = PartitionTableReader.Read(disk);
        foreach (var f in table.Findings)
        {
            Add(findings, f, disk.Name);
        }

        var candidates = table.Kind == PartitionTableKind.None
            ? [(Index: 0, Start: 0L, Size: disk.LengthBytes)]
            : table.Partitions.Select(p => (p.Index, Start: p.StartBytes, Size: p.SizeBytes)).ToList();
        var pvs = new List<ProbedPv>();
        var pvPartitions = new HashSet<int>();
        foreach (var (index, start, size) in candidates)
        {
            if (TryReadPv(disk, start, size) is { } pv)
            {
                found.Add(pv);
                pvs.Add(Describe(pv, findings));
                pvPartitions.Add(index);
            }
        }

        if (pvs.Count == 0)
        {
            foreach (var start in QuickSearch(disk))
            {
                if (TryReadPv(disk, start, disk.LengthBytes - start) is { } pv)
                {
                    Add(findings, new Finding(ProbeFindingMap.PvOutsidePartitionTable, Severity.Error,
                        $"an LVM PV starts at byte {start} but no partition table entry points at it: the partition table was lost or overwritten", start), disk.Name);
                    found.Add(pv);
                    pvs.Add(Describe(pv, findings));
                    break;
                }
            }
        }

        var content = pvs.Count == 0 ? DescribeContent(disk, candidates.Select(c => c.Start)) : null;
        if (content is not null)
        {
            Add(findings, new Finding(ProbeFindingMap.NotAnSr, Severity.Error,
                $"no LVM label or metadata area found (checked {candidates.Count} location(s) and a 1 MiB-aligned search): {content}", 0), disk.Name);
        }

        var partitions = table.Partitions
            .Select(p => new ProbedPartition(p.Index, p.StartBytes, p.SizeBytes, $"{p.TypeName} ({p.TypeCode})", p.Name, pvPartitions.Contains(p.Index)))
            .ToList();
        bool? primary = table.Kind == PartitionTableKind.None ? null : table.PrimaryValid;
        bool? backup = table.Kind == PartitionTableKind.Gpt ? table.BackupValid : null;
        var kind = table.Kind.ToString().ToLowerInvariant();
        return new DiskResult(new ProbedDisk(disk.Name, disk.LengthBytes, kind, primary, backup, partitions, pvs, content), content);
    }

    /// <summary>Reads a PV at <paramref name="start"/> when a label or an mda header is there; null otherwise.</summary>
    private static SrPhysicalVolume? TryReadPv(IBlockSource disk, long start, long size)
    {
        var view = disk.Slice(start, size, start == 0 ? disk.Name : $"{disk.Name}@{start}");
        if (view.LengthBytes < LvmPhysicalVolumeReader.DefaultMda1OffsetBytes + SectorBytes)
        {
            return null;
        }

        var head = new byte[LvmPhysicalVolumeReader.DefaultMda1OffsetBytes + SectorBytes];
        if (view.ReadAt(0, head) < head.Length)
        {
            return null;
        }

        var hasLabel = LvmLabel.TryFind(head.AsSpan(0, LvmLabelLayout.ScanBytes)) is not null;
        var hasMda = LvmMdaHeader.Decode(head.AsSpan((int)LvmPhysicalVolumeReader.DefaultMda1OffsetBytes, SectorBytes)).MagicValid;
        return hasLabel || hasMda ? new SrPhysicalVolume(disk, start, view, LvmPhysicalVolumeReader.Read(view)) : null;
    }

    private static IEnumerable<long> QuickSearch(IBlockSource disk)
    {
        yield return 63 * SectorBytes;
        var limit = Math.Min(disk.LengthBytes, QuickSearchLimitBytes);
        for (var offset = QuickSearchStepBytes; offset < limit; offset += QuickSearchStepBytes)
        {
            yield return offset;
        }
    }

    private static ProbedPv Describe(SrPhysicalVolume pv, List<ProbeFinding> findings)
    {
        var r = pv.Report;
        foreach (var f in r.Findings)
        {
            Add(findings, f.Rebase(pv.DiskOffsetBytes), pv.Disk.Name);
        }

        var mdas = r.Mdas.Select(m => new ProbedMda(
            m.HeaderOffsetBytes, m.SizeBytes > 0 ? m.SizeBytes : (long)(m.Header?.SizeBytes ?? 0), m.HeaderValid,
            m.TextOffsetBytes, m.Committed is { } c ? (long)c.SizeBytes : null,
            m.Committed is { } c2 ? Hex.U32(c2.Checksum) : null,
            m.Committed is null ? null : m.TextCrcValid)).ToList();
        var vg = r.Metadata?.VolumeGroup;
        return new ProbedPv(pv.Disk.Name, pv.DiskOffsetBytes, r.PvUuid, (int?)r.LabelSector, (long?)r.DeviceSizeBytes, r.PeStartBytes, mdas, vg?.Name, vg?.Seqno);
    }

    private static AssembledSr ProbeVg(VgSelection selection, List<SrPhysicalVolume> all, List<ProbeFinding> findings)
    {
        var vg = selection.Vg;
        var members = selection.Members;
        var source = selection.SourceName;
        var isXen = XenNames.TryParseSrVgName(vg.Name, out var srUuid);
        if (!isXen)
        {
            Add(findings, new Finding(ProbeFindingMap.NotXenVg, Severity.Info,
                $"VG {vg.Name} is an LVM volume group but not a XenServer SR (expected VG_XenStorage-<sr uuid>)"), source);
        }

        // pvN keys are renumbered on every write: resolve them within this version only.
        var pvByKey = new Dictionary<string, (LvmPhysicalVolume Meta, SrPhysicalVolume? Found)>();
        var unlabelled = members.Where(p => p.Report.PvUuid is null).ToList();
        foreach (var meta in vg.PhysicalVolumes)
        {
            var match = all.FirstOrDefault(p => p.Report.PvUuid is { } u && LvmUuid.Strip(u) == LvmUuid.Strip(meta.Id))
                ?? MatchUnlabelled(meta, vg, unlabelled, all);
            if (match is not null && match.Report.PvUuid is null)
            {
                unlabelled.Remove(match);
                Add(findings, new Finding("PV_IDENTIFIED_BY_METADATA", Severity.Info,
                    $"the PV at byte {match.DiskOffsetBytes} has no label; it was identified as {meta.Key} ({meta.Id}) from the VG metadata in its metadata area",
                    match.DiskOffsetBytes), match.Disk.Name);
            }

            pvByKey[meta.Key] = (meta, match);
            if (match is null)
            {
                Add(findings, new Finding(ProbeFindingMap.PvMissing, Severity.Error,
                    $"VG {vg.Name} needs PV {meta.Id} ({meta.Key}, last seen as {meta.Device ?? "?"}), which is not among the sources"), source);
            }
        }

        var srPvs = pvByKey.Values.Select(p => new ProbedSrPv(p.Meta.Key, p.Meta.Id, p.Found?.Disk.Name, p.Found?.DiskOffsetBytes,
            p.Meta.PeStartBytes, p.Meta.PeCount, p.Found is null)).ToList();

        var volumes = vg.LogicalVolumes.Select(lv => OpenLv(vg, lv, pvByKey, findings, source)).ToList();
        var mgt = ReadMgt(volumes.FirstOrDefault(v => v.Name.Kind == XenLvKind.Mgt), findings, source);
        if (isXen && mgt is null)
        {
            Add(findings, new Finding(ProbeFindingMap.MgtMissing, Severity.Warning,
                "no readable MGT volume: VDI names are unknown (legacy SRs have none)"), source);
        }

        var (vdis, assembledVdis) = ProbeVdis(volumes, mgt, findings, source);
        var lvs = volumes.Select(v => new ProbedLv(v.Lv.Name, KindName(v.Name.Kind), v.Name.VdiUuid?.ToString(), v.SizeBytes,
            v.Lv.Segments.Count, v.Lv.Tags)).ToList();
        if (volumes.FirstOrDefault(v => v.Name.Kind is XenLvKind.Journal or XenLvKind.VhdResizeJournal) is { } journal)
        {
            Add(findings, new Finding(ProbeFindingMap.JournalPresent, Severity.Warning,
                $"journal LV {journal.Lv.Name} exists: a storage-manager operation (inflate, snapshot, coalesce) was interrupted"), source);
        }

        var probed = new ProbedSr(isXen ? srUuid.ToString() : null, vg.Name, vg.Id, vg.Seqno, vg.ExtentSizeBytes,
            mgt?.SrInfo?.NameLabel, mgt?.SrInfo?.NameDescription, srPvs, lvs, vdis);
        return new AssembledSr(probed, vg, selection.Choice, isXen ? srUuid : null, volumes, assembledVdis, mgt);
    }

    /// <summary>
    /// A PV whose label is gone but whose metadata area names this VG: the only unlabelled member when exactly one
    /// PV of the VG is unaccounted for, else the one whose size equals the metadata's dev_size.
    /// </summary>
    private static SrPhysicalVolume? MatchUnlabelled(LvmPhysicalVolume meta, LvmVolumeGroup vg, List<SrPhysicalVolume> unlabelled, List<SrPhysicalVolume> all)
    {
        var unaccounted = vg.PhysicalVolumes.Count(p => !all.Any(f => f.Report.PvUuid is { } u && LvmUuid.Strip(u) == LvmUuid.Strip(p.Id)));
        if (unlabelled.Count == 1 && unaccounted == 1)
        {
            return unlabelled[0];
        }

        var bySize = unlabelled.Where(p => meta.DevSizeSectors is { } s && s * 512 == p.View.LengthBytes).ToList();
        return bySize.Count == 1 ? bySize[0] : null;
    }

    private static AssembledLv OpenLv(LvmVolumeGroup vg, LvmLogicalVolume lv, Dictionary<string, (LvmPhysicalVolume Meta, SrPhysicalVolume? Found)> pvs,
        List<ProbeFinding> findings, string source)
    {
        var runs = new List<ExtentRun>();
        var segments = new List<ProbedSegment>();
        var extentBytes = vg.ExtentSizeBytes;
        foreach (var seg in lv.Segments)
        {
            if (seg.Type != LvmSegment.StripedType || seg.Stripes.Count != 1)
            {
                Add(findings, new Finding(ProbeFindingMap.LvSegmentUnsupported, Severity.Warning,
                    $"LV {lv.Name} segment {seg.Name} is type \"{seg.Type}\" with {seg.Stripes.Count} areas; only linear segments are read (XenServer SRs use only those)", seg.OffsetBytes), source);
                continue;
            }

            var stripe = seg.Stripes[0];
            if (!pvs.TryGetValue(stripe.PvKey, out var pv))
            {
                continue;
            }

            // The text can hold any 64-bit numbers (LvmMetadata reports them); a segment whose extents have no byte
            // address on either side (negative, empty, or ending past 2^63 bytes) is not mapped.
            var maxExtents = long.MaxValue / extentBytes;
            if (!ExtentRun.IsAddressable(seg.StartExtent, seg.ExtentCount, stripe.PeStart, extentBytes))
            {
                Add(findings, new Finding(ProbeFindingMap.LvSegmentUnmappable, Severity.Error,
                    $"LV {lv.Name} segment {seg.Name}: start_extent {seg.StartExtent}, extent_count {seg.ExtentCount} on PV extent {stripe.PeStart} " +
                    $"cannot be mapped (each must be >= 0, extent_count > 0, and both ends below {maxExtents} extents of {extentBytes} bytes); its extents read as zeros",
                    seg.OffsetBytes, "extent_count", seg.ExtentCount.ToString(CultureInfo.InvariantCulture)), source);
                continue;
            }

            segments.Add(new ProbedSegment(seg.StartExtent, seg.ExtentCount, pv.Meta.Id, stripe.PeStart));
            if (stripe.PeStart + seg.ExtentCount > pv.Meta.PeCount)
            {
                Add(findings, new Finding(ProbeFindingMap.LvBeyondPv, Severity.Error,
                    $"LV {lv.Name} segment {seg.Name} uses PEs {stripe.PeStart}..{stripe.PeStart + seg.ExtentCount - 1} but {pv.Meta.Key} has {pv.Meta.PeCount}", seg.OffsetBytes), source);
            }

            if (pv.Found is { } f)
            {
                runs.Add(new ExtentRun(seg.StartExtent, seg.ExtentCount, f.View, pv.Meta.PeStartBytes, stripe.PeStart));
                var endBytes = (Int128)pv.Meta.PeStartBytes + ((Int128)(stripe.PeStart + seg.ExtentCount) * extentBytes);
                if (endBytes > f.View.LengthBytes)
                {
                    Add(findings, new Finding(ProbeFindingMap.LvBeyondSource, Severity.Error,
                        $"LV {lv.Name} extends to byte {f.DiskOffsetBytes + endBytes} of the disk, which has only {f.Disk.LengthBytes}: the image is truncated",
                        f.DiskOffsetBytes + f.View.LengthBytes), f.Disk.Name);
                }
            }
        }

        var fragments = 0;
        ProbedSegment? previous = null;
        foreach (var s in segments.OrderBy(s => s.StartExtent))
        {
            if (previous is null || previous.PvUuid != s.PvUuid || previous.PvStartExtent + previous.ExtentCount != s.PvStartExtent)
            {
                fragments++;
            }

            previous = s;
        }

        // The segments' sum, cut to what bytes can address (unmappable segments are reported above).
        var extentCount = Math.Clamp(lv.ExtentCount, 0, long.MaxValue / extentBytes);
        var mapped = new ExtentMappedSource($"LV {lv.Name}", extentBytes, extentCount, runs);
        long? DiskOffset(long lvOffset)
        {
            var le = lvOffset / extentBytes;
            var run = runs.FirstOrDefault(r => le >= r.StartExtent && le < r.StartExtent + r.ExtentCount);
            var pv = run is null ? null : pvs.Values.First(p => ReferenceEquals(p.Found?.View, run.Pv)).Found;
            return run is null || pv is null ? null
                : pv.DiskOffsetBytes + run.PeStartBytes + ((run.PvStartExtent + le - run.StartExtent) * extentBytes) + (lvOffset % extentBytes);
        }

        var diskName = runs.Count > 0 ? pvs.Values.First(p => ReferenceEquals(p.Found?.View, runs[0].Pv)).Found!.Disk.Name : source;
        return new AssembledLv(lv, XenLvName.Parse(lv.Name), checked(extentCount * extentBytes), mapped, segments, fragments, DiskOffset, diskName);
    }

    private static XenMgtVolume? ReadMgt(AssembledLv? lv, List<ProbeFinding> findings, string source)
    {
        if (lv is null)
        {
            return null;
        }

        try
        {
            var sector0 = new byte[SectorBytes];
            lv.Source.ReadExactlyAt(0, sector0);
            var length = (int)Math.Min(XenMgtVolume.BytesToRead(sector0), lv.SizeBytes);
            var mgt = XenMgtVolume.Decode(lv.Source.ReadBytes(0, length));
            foreach (var f in mgt.Findings)
            {
                AddLvFinding(findings, f, lv, null);
            }

            return mgt;
        }
        catch (SourceReadException e)
        {
            Add(findings, new Finding(ProbeFindingMap.VdiUnreadable, Severity.Error, $"MGT volume unreadable: {e.Message}", e.OffsetBytes), lv.DiskName);
            return null;
        }
    }

    private static (List<ProbedVdi>, List<AssembledVdi>) ProbeVdis(List<AssembledLv> volumes, XenMgtVolume? mgt, List<ProbeFinding> findings, string source)
    {
        var records = mgt?.Records.Where(r => r.WithinHeaderLength && r.Uuid is not null)
            .GroupBy(r => r.Uuid!.Value).ToDictionary(g => g.Key, g => g.OrderBy(r => r.IsDeleted).First()) ?? [];
        var vdiLvs = volumes.Where(v => v.Name.Kind is XenLvKind.VhdVdi or XenLvKind.RawVdi && v.Name.VdiUuid is not null).ToList();
        var images = new Dictionary<AssembledLv, VhdImage?>();
        foreach (var v in vdiLvs.Where(v => v.Name.Kind == XenLvKind.VhdVdi))
        {
            try
            {
                var image = VhdImage.Open(v.Source);
                images[v] = image;
                foreach (var f in image.Findings)
                {
                    AddLvFinding(findings, f, v, v.Name.VdiUuid);
                }
            }
            catch (SourceReadException e)
            {
                images[v] = null;
                Add(findings, new Finding(ProbeFindingMap.VdiUnreadable, Severity.Error,
                    $"VDI {v.Name.VdiUuid}: VHD headers unreadable: {e.Message}", e.OffsetBytes), v.DiskName, v.Name.VdiUuid);
            }
        }

        var byFooterUuid = images.Where(i => i.Value?.Footer is not null).GroupBy(i => i.Value!.Footer!.Uuid).ToDictionary(g => g.Key, g => g.First().Key);
        var children = new HashSet<AssembledLv>();
        var result = new List<ProbedVdi>();
        var assembled = new List<(AssembledLv Lv, ProbedVdi Probed, VhdImage? Image, AssembledLv? Parent, XenMgtVdiRecord? Record)>();
        foreach (var v in vdiLvs)
        {
            var uuid = v.Name.VdiUuid!.Value;
            records.TryGetValue(uuid, out var rec);
            var image = images.GetValueOrDefault(v);
            var footer = image?.Footer;
            Guid? parentFooter = footer?.DiskType == VhdDiskType.Differencing ? image!.Info.ParentUuid : null;
            var parent = ResolveParent(image, parentFooter, byFooterUuid, volumes);
            if (parent is not null)
            {
                children.Add(parent);
            }
            else if (footer?.DiskType == VhdDiskType.Differencing)
            {
                Add(findings, new Finding(ProbeFindingMap.VdiParentMissing, Severity.Error,
                    $"VDI {uuid} is a differencing VHD whose parent (footer uuid {parentFooter}, name {image!.Info.ParentName ?? "?"}) is not in this SR's current metadata"), v.DiskName, uuid);
            }

            var hidden = v.Name.Kind == XenLvKind.RawVdi ? v.Lv.Tags.Contains("hidden") : footer?.Hidden == 1;
            var probedVdi = new ProbedVdi(
                uuid.ToString(), v.Lv.Name, v.Name.Kind == XenLvKind.VhdVdi ? "vhd" : "raw",
                rec?.NameLabel, rec?.NameDescription, v.SizeBytes,
                v.Name.Kind == XenLvKind.RawVdi ? v.SizeBytes : image?.VirtualSizeBytes,
                footer?.DiskType.ToString().ToLowerInvariant(), footer?.Uuid.ToString(),
                image?.Info.FooterSource.ToString().ToLowerInvariant(),
                footer is null ? v.Name.Kind == XenLvKind.VhdVdi ? false : null : footer.HasValidCookie && footer.IsChecksumValid,
                image?.Header is { } h ? h.IsChecksumValid : footer?.HasDynamicHeader == true ? false : null,
                hidden, parentFooter?.ToString(), parent?.Name.VdiUuid?.ToString(), parent?.Lv.Name,
                image?.Info.AllocatedBlockCount, v.Segments, v.Fragments, rec?.IsASnapshot, rec?.SnapshotOf?.ToString());
            result.Add(probedVdi);
            assembled.Add((v, probedVdi, image, parent, rec));
            if (rec is null && mgt is not null)
            {
                Add(findings, new Finding(ProbeFindingMap.VdiNoMgtRecord, Severity.Info, $"VDI {uuid} ({v.Lv.Name}) has no MGT record: its name is unknown"), source);
            }
        }

        foreach (var v in vdiLvs.Where(v => images.GetValueOrDefault(v)?.Footer?.Hidden == 1 && !children.Contains(v)))
        {
            Add(findings, new Finding(ProbeFindingMap.VdiHiddenLeaf, Severity.Info,
                $"VDI {v.Name.VdiUuid} is hidden and nothing uses it as a parent: a deleted VDI (or an orphaned base copy) not yet garbage-collected; its data is intact"), source);
        }

        var present = vdiLvs.Select(v => v.Name.VdiUuid!.Value).ToHashSet();
        foreach (var (uuid, rec) in records.Where(r => !present.Contains(r.Key)))
        {
            var name = rec.NameLabel is null ? "" : $" \"{rec.NameLabel}\"";
            if (rec.IsDeleted)
            {
                Add(findings, new Finding(ProbeFindingMap.MgtDeletedRecord, Severity.Info,
                    $"VDI{name} ({uuid}) was deleted (MGT record marked deleted, no LV): an older metadata version may still map its extents", rec.OffsetBytes), source);
            }
            else if (rec.Type is not "metadata" && rec.VdiType is "vhd" or "aio")
            {
                Add(findings, new Finding(ProbeFindingMap.MgtRecordWithoutLv, Severity.Warning,
                    $"VDI{name} ({uuid}) is recorded in MGT but has no LV in the current metadata: deleted, or the metadata was rolled back", rec.OffsetBytes), source);
            }
        }

        var byLv = new Dictionary<AssembledLv, AssembledVdi>();
        foreach (var a in assembled)
        {
            byLv[a.Lv] = new AssembledVdi(a.Lv.Name.VdiUuid!.Value, a.Lv, a.Probed, a.Image, a.Record, children.Contains(a.Lv));
        }

        foreach (var a in assembled.Where(a => a.Parent is not null && byLv.ContainsKey(a.Parent)))
        {
            byLv[a.Lv].Parent = byLv[a.Parent!];
        }

        return (result, assembled.Select(a => byLv[a.Lv]).ToList());
    }

    /// <summary>Parent by footer uuid first (robust to renames), then by locator / parent name -> LV name.</summary>
    private static AssembledLv? ResolveParent(VhdImage? image, Guid? parentFooter, Dictionary<Guid, AssembledLv> byFooterUuid, List<AssembledLv> volumes)
    {
        if (image is null || parentFooter is null)
        {
            return null;
        }

        return ResolveParent(parentFooter.Value, image.Info.Locators.Select(l => l.Text).Prepend(image.Info.ParentName), byFooterUuid, volumes);
    }

    /// <summary>Shared with <see cref="AssembledSr.ResolveParent"/>: footer uuid, then locator / parent name texts -> LV name.</summary>
    internal static AssembledLv? ResolveParent(Guid parentFooter, IEnumerable<string?> names, IReadOnlyDictionary<Guid, AssembledLv> byFooterUuid, IReadOnlyList<AssembledLv> volumes)
    {
        if (parentFooter != Guid.Empty && byFooterUuid.TryGetValue(parentFooter, out var byUuid))
        {
            return byUuid;
        }

        foreach (var text in names)
        {
            if (XenNames.TryParentUuidFromLocator(text, out var vdi, out var kind))
            {
                var match = volumes.FirstOrDefault(v => v.Name.VdiUuid == vdi && v.Name.Kind == kind);
                if (match is not null)
                {
                    return match;
                }
            }
        }

        return null;
    }

    private static string KindName(XenLvKind kind) => kind switch
    {
        XenLvKind.VhdVdi => "vhd",
        XenLvKind.RawVdi => "raw",
        XenLvKind.Mgt => "mgt",
        XenLvKind.Journal => "journal",
        XenLvKind.VhdResizeJournal => "vhd-resize-journal",
        XenLvKind.OldLeaf => "old-leaf",
        XenLvKind.CbtLog => "cbt-log",
        XenLvKind.TrimLv => "trim",
        XenLvKind.Qcow2Vdi => "qcow2",
        _ => "other",
    };

    /// <summary>What a disk holds when no PV was found: named, so the user knows what they pointed at.</summary>
    private static string DescribeContent(IBlockSource disk, IEnumerable<long> starts)
    {
        foreach (var start in starts)
        {
            var head = new byte[2048];
            if (disk.ReadAt(start, head) == head.Length && Ext4Superblock.LooksLikeExt(head))
            {
                var sb = Ext4Superblock.Decode(head.AsSpan(1024, 1024));
                var where = start == 0 ? "" : $" at byte {start}";
                return $"{sb.Kind.ToString().ToLowerInvariant()} filesystem \"{sb.VolumeName}\" (uuid {sb.Uuid}){where}";
            }
        }

        var tail = new byte[SectorBytes];
        var first = new byte[SectorBytes];
        if ((disk.ReadAt(disk.LengthBytes - SectorBytes, tail) == SectorBytes && tail.AsSpan().StartsWith(VhdFooter.CookieMagic))
            || (disk.ReadAt(0, first) == SectorBytes && first.AsSpan().StartsWith(VhdFooter.CookieMagic)))
        {
            return "a VHD file, not an SR (read it with vrescue vhd check)";
        }

        var probe = new byte[Math.Min(1 << 20, disk.LengthBytes)];
        var n = disk.ReadAt(0, probe);
        return probe.AsSpan(0, n).ContainsAnyExcept((byte)0) ? "unrecognised data" : "blank (first MiB is zeros)";
    }

    private static string Diagnose(List<DiskResult> disks, List<ProbedSr> srs, FailureMode mode, List<ProbeFinding> findings)
    {
        if (srs.Count == 0)
        {
            var what = string.Join("; ", disks.Select(d => d.ContentDescription ?? (d.Disk.Pvs.Count > 0 ? "LVM PV without readable VG metadata" : "nothing recognised")));
            return mode == FailureMode.NotAnSr || findings.All(f => f.FailureMode == "none")
                ? $"not a XenServer SR: {what}"
                : $"no SR could be assembled ({FailureModes.Name(mode)}): {what}";
        }

        var parts = srs.Select(sr =>
        {
            var vhd = sr.Vdis.Count(v => v.VdiType == "vhd");
            var name = sr.NameLabel is null ? "" : $" \"{sr.NameLabel}\"";
            return sr.SrUuid is null
                ? $"LVM VG {sr.VgName} (not a XenServer SR) with {sr.Lvs.Count} LVs"
                : $"SR {sr.SrUuid}{name}: {sr.Vdis.Count} VDIs ({vhd} VHD, {sr.Vdis.Count - vhd} raw), seqno {sr.Seqno}";
        });
        var state = mode == FailureMode.None
            ? findings.Any(f => f.Severity == "warning") ? "readable, with warnings" : "healthy"
            : $"{FailureModes.Name(mode)}: {findings.First(f => f.FailureMode == FailureModes.Name(mode)).Message}";
        return $"{string.Join("; ", parts)}; {state}";
    }

    private static void Add(List<ProbeFinding> findings, Finding f, string source, Guid? vdi = null)
    {
        var (mode, next) = ProbeFindingMap.Classify(f, source, vdi?.ToString());
        findings.Add(ProbeFinding.From(f, source, mode, next));
    }

    /// <summary>Findings from a reader working on an LV view: offsets become absolute offsets on the disk.</summary>
    private static void AddLvFinding(List<ProbeFinding> findings, Finding f, AssembledLv lv, Guid? vdi)
    {
        var absolute = f.OffsetBytes is { } o ? lv.DiskOffset(o) : null;
        var message = f.OffsetBytes is { } lvOffset ? $"{lv.Lv.Name} +0x{lvOffset:X}: {f.Message}" : $"{lv.Lv.Name}: {f.Message}";
        Add(findings, f with { OffsetBytes = absolute, Message = message }, lv.DiskName, vdi);
    }
}
