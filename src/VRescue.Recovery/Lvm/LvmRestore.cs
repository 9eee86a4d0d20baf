// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text;
using VRescue.Formats.Lvm;
using VRescue.Storage;
using VRescue.Storage.Lvm;

namespace VRescue.Recovery.Lvm;

/// <summary>An extent range of the chosen version that a later version gave to another LV.</summary>
public sealed record LvmExtentCollision(string LvName, string OtherLvName, long OtherSeqno, string PvId, long FirstPe, long LastPe)
{
    public override string ToString() =>
        $"LV {LvName} uses PEs {FirstPe}-{LastPe} of PV {PvId}, which seqno {OtherSeqno} gave to LV {OtherLvName}";
}

/// <summary>The chosen version cannot be restored safely (extents reused later, PV missing, text too large).</summary>
public sealed class LvmRestoreRefusedException(string message, IReadOnlyList<LvmExtentCollision>? collisions = null) : Exception(message)
{
    public IReadOnlyList<LvmExtentCollision> Collisions { get; } = collisions ?? [];
}

/// <summary>What a repair writes into one target disk.</summary>
public sealed record LvmRepairPlan(int DiskIndex, string PvId, long NewSeqno, IReadOnlyList<TargetWrite> Writes, IReadOnlyList<string> Notes);

/// <summary>
/// Turns a chosen version into something LVM accepts: a backup file for <c>vgcfgrestore -f</c>, or the label,
/// mda headers and text to write into a copy of each PV (what <c>pvcreate --uuid --restorefile</c> plus
/// <c>vgcfgrestore</c> would do, without touching extents).
/// </summary>
public static class LvmRestore
{
    /// <summary>Backup-file text of <paramref name="version"/>, with a comment saying where it came from.</summary>
    public static string BackupText(LvmVgVersion version)
    {
        var from = version.Locations[0];
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"# Exported by VRescue from {from.Source} ({from.Where} at byte {from.OffsetBytes}): VG {version.VgName} seqno {version.Seqno} crc {version.CrcText}\n");
        sb.Append(LvmMetadataWriter.WriteBackup(version.Metadata));
        return sb.ToString();
    }

    /// <summary>
    /// LVs of <paramref name="version"/> whose extents a later version gave to a different LV (its data may be
    /// overwritten). Later = after it in the timeline.
    /// </summary>
    public static List<LvmExtentCollision> Collisions(LvmVgHistory vg, LvmVgVersion version)
    {
        var mine = Ranges(version).ToList();
        var result = new List<LvmExtentCollision>();
        var reported = new HashSet<(string, string)>();
        foreach (var later in vg.Versions.Where(v => v.Index > version.Index))
        {
            foreach (var other in Ranges(later))
            {
                foreach (var m in mine.Where(m => m.PvId == other.PvId && m.LvId != other.LvId && m.First <= other.Last && other.First <= m.Last))
                {
                    if (reported.Add((m.LvName, other.LvName)))
                    {
                        result.Add(new LvmExtentCollision(m.LvName, other.LvName, later.Seqno, m.PvId, Math.Max(m.First, other.First), Math.Min(m.Last, other.Last)));
                    }
                }
            }
        }

        return result;
    }

    private static IEnumerable<(string LvId, string LvName, string PvId, long First, long Last)> Ranges(LvmVgVersion v)
    {
        foreach (var lv in v.VolumeGroup.LogicalVolumes)
        {
            foreach (var seg in lv.Segments.Where(s => s.IsSupported && s.StripeCount > 0 && s.ExtentCount > 0))
            {
                var per = seg.ExtentCount / seg.StripeCount;
                foreach (var st in seg.Stripes)
                {
                    var pv = v.VolumeGroup.FindPhysicalVolume(st.PvKey);
                    yield return (LvmUuid.Strip(lv.Id), lv.Name, LvmUuid.Strip(pv?.Id ?? st.PvKey), st.PeStart, st.PeStart + per - 1);
                }
            }
        }
    }

    /// <summary>
    /// Plans the writes that make each PV of <paramref name="version"/> carry it as committed metadata, with a seqno
    /// above every seqno seen for the VG (so LVM prefers it over any surviving newer copy). Refuses on extent
    /// collisions, missing PVs, a text larger than LVM allows, or a layout where a write would reach the extents.
    /// </summary>
    public static List<LvmRepairPlan> PlanRepair(LvmHistory history, LvmVgHistory vg, LvmVgVersion version)
    {
        var collisions = Collisions(vg, version);
        if (collisions.Count > 0)
        {
            throw new LvmRestoreRefusedException(
                $"seqno {version.Seqno} (crc {version.CrcText}) cannot be restored safely: later versions reused its extents, so those LVs' data may be overwritten:\n  " +
                string.Join("\n  ", collisions), collisions);
        }

        var newSeqno = vg.Versions.Max(v => v.Seqno) + 1;
        var plans = new List<LvmRepairPlan>();
        foreach (var meta in version.VolumeGroup.PhysicalVolumes)
        {
            var pv = LvmHistoryReader.ResolvePv(vg, version, meta, history.Pvs)
                ?? throw new LvmRestoreRefusedException(
                    $"VG {vg.VgName} seqno {version.Seqno} needs PV {meta.Id} ({meta.Key}, last seen as {meta.Device ?? "?"}), which is not among the sources (or cannot be told apart from another unlabelled PV)");
            plans.Add(PlanPv(pv, version, meta, newSeqno));
        }

        var twice = plans.GroupBy(p => p.DiskIndex).FirstOrDefault(g => g.Count() > 1 && g.Select(p => p.PvId).Distinct().Count() > 1);
        if (twice is not null)
        {
            throw new LvmRestoreRefusedException($"two PVs of the version resolve to the same source #{twice.Key + 1}; give every PV of the VG as a separate source");
        }

        return plans;
    }

    private static LvmRepairPlan PlanPv(LvmHistoryPv pv, LvmVgVersion version, LvmPhysicalVolume meta, long newSeqno)
    {
        var notes = new List<string>();
        var vgMeta = version.VolumeGroup;
        var peStart = meta.PeStartBytes;
        var dataEnd = checked(peStart + (meta.PeCount * vgMeta.ExtentSizeBytes));
        if (peStart <= 0 || dataEnd > pv.View.LengthBytes)
        {
            throw new LvmRestoreRefusedException(
                $"PV {meta.Id}: pe_start {peStart} and {meta.PeCount} extents of {vgMeta.ExtentSizeBytes} bytes end at {dataEnd}, beyond the {pv.View.LengthBytes}-byte source");
        }

        // The mdas to write: those a valid header or label describes, else mda1 = (4096, pe_start - 4096) like pvck --repair.
        var areas = pv.Scan.Areas.Where(a => a.HeaderValid || a.Source == LvmAreaSource.Label).ToList();
        if (areas.Count == 0)
        {
            areas = pv.Scan.Areas.Where(a => a.Source == LvmAreaSource.PeStart && a.HeaderOffsetBytes + a.SizeBytes == peStart).ToList();
        }

        var layout = areas.Count > 0
            ? areas.Select(a => (a.HeaderOffsetBytes, a.SizeBytes, Area: (LvmScannedArea?)a)).ToList()
            : [(LvmPhysicalVolumeReader.DefaultMda1OffsetBytes, peStart - LvmPhysicalVolumeReader.DefaultMda1OffsetBytes, null)];
        foreach (var (offset, size, _) in layout)
        {
            var overlapsData = offset < dataEnd && offset + size > peStart;
            if (offset < LvmLabelLayout.ScanBytes || size <= 2 * LvmMdaHeaderLayout.HeaderBytes || overlapsData || offset + size > pv.View.LengthBytes)
            {
                throw new LvmRestoreRefusedException(
                    $"PV {meta.Id}: metadata area at {offset} size {size} would overlap the label sectors or the extents ({peStart}..{dataEnd}); refusing to write");
            }
        }

        // A fresh copy of the text with the new seqno (the history keeps the original).
        var fresh = LvmMetadata.Parse(version.Text);
        fresh.VolumeGroup!.Section.Set("seqno", LvmConfigValue.FromInteger(newSeqno));
        var text = LvmMetadataWriter.EncodeOnDisk(fresh);
        var crc = LvmCrc.Compute(text);

        var writes = new List<TargetWrite>();
        var baseOffset = pv.DiskOffsetBytes;
        foreach (var (offset, size, area) in layout)
        {
            var max = ((size - LvmMdaHeaderLayout.HeaderBytes) / 2) - LvmMdaHeaderLayout.HeaderBytes;
            if (text.Length > max)
            {
                throw new LvmRestoreRefusedException($"the text is {text.Length} bytes; a {size}-byte metadata area holds at most {max} (lvm2 2.03 limit)");
            }

            var at = NextOffset(pv, area, size);
            var first = (int)Math.Min(text.Length, size - at);
            writes.Add(new TargetWrite(baseOffset + offset + at, Padded(text.AsSpan(0, first)), $"metadata text seqno {newSeqno} at mda offset {at}"));
            if (first < text.Length)
            {
                writes.Add(new TargetWrite(baseOffset + offset + LvmMdaHeaderLayout.HeaderBytes, Padded(text.AsSpan(first)), "metadata text (wrapped part)"));
            }

            var header = LvmMdaHeader.Create((ulong)offset, (ulong)size, new LvmRawLocation((ulong)at, (ulong)text.Length, crc, 0));
            writes.Add(new TargetWrite(baseOffset + offset, header.Raw.ToArray(), $"mda header at {offset} (committed: offset {at}, size {text.Length}, crc {crc:x8})"));
        }

        var labelSector = pv.Scan.Label is { IsAcceptedByLvm: true } l ? l.SectorNumber : LvmLabelLayout.DefaultSector;
        var bootloader = meta.Section.GetInt64("ba_start") is { } baStart and > 0 && meta.Section.GetInt64("ba_size") is { } baSize and > 0
            ? new List<LvmDiskLocation> { new((ulong)baStart * 512, (ulong)baSize * 512) }
            : null;
        var devSize = meta.DevSizeSectors is { } ds and > 0 ? (ulong)ds * 512 : (ulong)pv.View.LengthBytes;
        var label = LvmLabel.Create(labelSector, LvmUuid.Strip(meta.Id), devSize,
            [new LvmDiskLocation((ulong)peStart, 0)], layout.Select(a => new LvmDiskLocation((ulong)a.Item1, (ulong)a.Item2)).ToList(),
            bootloaderAreas: bootloader);
        writes.Add(new TargetWrite(baseOffset + label.OffsetBytes, label.Raw.ToArray(), $"label in sector {labelSector} (PV {meta.Id})"));
        if (pv.Scan.Label is not { IsAcceptedByLvm: true })
        {
            notes.Add($"label rebuilt from the metadata: PV uuid {meta.Id}, pe_start {peStart}, device size {devSize}");
        }

        // Other LABELONE sectors would make LVM see two labels.
        var head = new byte[LvmLabelLayout.ScanBytes];
        pv.View.ReadExactlyAt(0, head);
        for (var s = 0; s < LvmLabelLayout.ScanSectors; s++)
        {
            if (s != labelSector && head.AsSpan(s * 512).StartsWith(LvmLabelLayout.LabelId))
            {
                writes.Add(new TargetWrite(baseOffset + s * 512, new byte[512], $"stale label in sector {s} cleared"));
            }
        }

        foreach (var w in writes)
        {
            if (w.OffsetBytes < baseOffset + dataEnd && w.OffsetBytes + w.Bytes.Length > baseOffset + peStart)
            {
                throw new InvalidOperationException($"internal: planned write '{w.What}' at {w.OffsetBytes} reaches the extents");
            }
        }

        notes.Add($"seqno {version.Seqno} written as seqno {newSeqno}, above every seqno found for the VG, so LVM uses it");
        return new LvmRepairPlan(pv.DiskIndex, meta.Id, newSeqno, writes, notes);
    }

    /// <summary>
    /// Where LVM would put the next copy (format-text.c _next_rlocn_offset): after the committed copy, or after the
    /// newest copy found when the header is gone, rounded up to 512; back to 512 when less than a sector remains.
    /// </summary>
    private static long NextOffset(LvmHistoryPv pv, LvmScannedArea? area, long size)
    {
        if (area is null)
        {
            return LvmMdaHeaderLayout.HeaderBytes;
        }

        var copies = pv.Scan.Copies.Where(c => ReferenceEquals(c.Area, area)).ToList();
        var last = copies.FirstOrDefault(c => c.Committed) ?? copies.MaxBy(c => c.WriteOrder);
        if (last is null)
        {
            return LvmMdaHeaderLayout.HeaderBytes;
        }

        var ringEnd = area.SizeBytes;
        var endExclusive = last.Wrapped
            ? LvmMdaHeaderLayout.HeaderBytes + (last.LengthBytes - (ringEnd - last.RingOffsetBytes!.Value))
            : last.RingOffsetBytes!.Value + last.LengthBytes;
        var next = (endExclusive + 511) / 512 * 512;
        return next > size - LvmMdaHeaderLayout.HeaderBytes ? LvmMdaHeaderLayout.HeaderBytes : next;
    }

    private static byte[] Padded(ReadOnlySpan<byte> bytes)
    {
        var b = new byte[(bytes.Length + 511) / 512 * 512];
        bytes.CopyTo(b);
        return b;
    }
}
