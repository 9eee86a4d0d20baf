// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;

namespace VRescue.Storage.Lvm;

/// <summary>What was found in one metadata area of a PV.</summary>
public sealed class LvmMetadataAreaReport
{
    /// <summary>1 for the first area in the label's list, 2 for the second.</summary>
    public required int Index { get; init; }

    /// <summary>Where the mda_header is, from the PV start.</summary>
    public required long HeaderOffsetBytes { get; init; }

    /// <summary>Area size from the label's disk_locn (0 when the area was found without a label).</summary>
    public required long SizeBytes { get; init; }

    /// <summary>The decoded header, or null when it could not be read.</summary>
    public LvmMdaHeader? Header { get; init; }

    /// <summary>True when the header passed every check LVM applies (CRC, magic, version, start, size).</summary>
    public bool HeaderValid { get; init; }

    /// <summary>raw_locn[0] of the header (committed metadata), when the header was read.</summary>
    public LvmRawLocation? Committed { get; init; }

    /// <summary>Where the committed text lies in the ring (mda-relative), including a wrap.</summary>
    public LvmTextExtent? TextExtent { get; init; }

    /// <summary>PV offset of the committed text's first byte.</summary>
    public long? TextOffsetBytes => TextExtent is { } e ? HeaderOffsetBytes + e.FirstOffsetBytes : null;

    /// <summary>The committed text as stored, wrap reassembled, including its NUL (raw_locn.size bytes).</summary>
    public byte[]? Text { get; init; }

    /// <summary>LVM CRC of <see cref="Text"/>.</summary>
    public uint? ComputedTextCrc { get; init; }

    /// <summary>True when <see cref="ComputedTextCrc"/> equals raw_locn[0].checksum.</summary>
    public bool TextCrcValid { get; init; }

    /// <summary>The committed text parsed, when there was text.</summary>
    public LvmMetadata? Metadata { get; init; }
}

/// <summary>Everything read from one PV: label, metadata areas, the committed metadata, and findings.</summary>
public sealed class LvmPhysicalVolumeReport
{
    public required string SourceName { get; init; }

    /// <summary>The label LVM would use, or the first LABELONE candidate when none is valid; null when none.</summary>
    public LvmLabel? Label { get; init; }

    /// <summary>Sector (0..3) of <see cref="Label"/>.</summary>
    public long? LabelSector => Label?.SectorNumber;

    /// <summary>PV UUID from the label, formatted 6-4-4-4-4-4-6.</summary>
    public string? PvUuid => Label?.PvUuidFormatted;

    /// <summary>pv_header.device_size.</summary>
    public ulong? DeviceSizeBytes => Label?.DeviceSizeBytes;

    /// <summary>Offset of PE 0: the label's data area, else pe_start from the metadata for this PV.</summary>
    public long? PeStartBytes { get; init; }

    public required IReadOnlyList<LvmMetadataAreaReport> Mdas { get; init; }

    /// <summary>The committed metadata: from the first area whose text has a valid CRC, else the first that parsed.</summary>
    public LvmMetadata? Metadata { get; init; }

    /// <summary>The PV's entry in <see cref="Metadata"/>, matched by UUID.</summary>
    public LvmPhysicalVolume? MetadataPv { get; init; }

    /// <summary>All findings; offsets are absolute within the PV.</summary>
    public required IReadOnlyList<Finding> Findings { get; init; }
}

/// <summary>
/// Reads an LVM2 PV read-only: label (sectors 0..3), each metadata area's header and committed text (ring wrap
/// handled, CRC checked), and the parsed metadata. Bad bytes and read failures become findings; it never throws
/// for what is on disk. Every size taken from disk is bounded before it allocates.
/// </summary>
public static class LvmPhysicalVolumeReader
{
    /// <summary>Where current LVM puts mda1 on a 4 KiB-page host; probed when no label is found.</summary>
    public const long DefaultMda1OffsetBytes = 4096;

    /// <summary>Reads <paramref name="pv"/> (a whole PV: partition or disk view starting at the PV's byte 0).</summary>
    public static LvmPhysicalVolumeReport Read(IBlockSource pv)
    {
        var findings = new List<Finding>();
        var head = new byte[Math.Min(LvmLabelLayout.ScanBytes, pv.LengthBytes)];
        var headLength = TryRead(pv, 0, head, findings, "label sectors") ? head.Length : 0;
        var label = headLength > 0 ? LvmLabel.TryFind(head, findings) : null;

        var areas = new List<(long Offset, long Size)>();
        if (label is null)
        {
            findings.Add(new Finding("LVM_NO_LABEL", Severity.Error,
                $"no LABELONE in sectors 0..3 of {pv.Name}; not an LVM PV, or its label was removed (pvremove zeroes it)", 0));
            areas.Add((DefaultMda1OffsetBytes, 0));
        }
        else
        {
            findings.AddRange(label.Validate());
            foreach (var a in label.MetadataAreas.Take(2))
            {
                areas.Add((a.OffsetBytes <= long.MaxValue ? (long)a.OffsetBytes : -1, a.SizeBytes <= long.MaxValue ? (long)a.SizeBytes : -1));
            }

            if (label.DeviceSizeBytes > (ulong)pv.LengthBytes)
            {
                findings.Add(new Finding("LVM_PV_TRUNCATED", Severity.Warning,
                    $"label says the device has {label.DeviceSizeBytes} bytes, the source has {pv.LengthBytes}",
                    label.OffsetBytes + label.PvHeaderOffset + LvmLabelLayout.DeviceSizeOffset, "pv_header.device_size",
                    label.DeviceSizeBytes.ToString(), pv.LengthBytes.ToString()));
            }
        }

        var mdas = new List<LvmMetadataAreaReport>();
        for (var i = 0; i < areas.Count; i++)
        {
            if (ReadArea(pv, i + 1, areas[i].Offset, areas[i].Size, label is null, findings) is { } report)
            {
                mdas.Add(report);
            }
        }

        var chosen = mdas.FirstOrDefault(m => m.TextCrcValid && m.Metadata?.VolumeGroup is not null)
            ?? mdas.FirstOrDefault(m => m.Metadata?.VolumeGroup is not null);
        CompareAreas(mdas, findings);

        var metadata = chosen?.Metadata;
        var metadataPv = label is null ? null
            : metadata?.VolumeGroup?.PhysicalVolumes.FirstOrDefault(p => LvmUuid.Strip(p.Id) == label.PvUuid);
        long? peStart = label?.DataAreas.Count > 0 && label.DataAreas[0].OffsetBytes <= long.MaxValue
            ? (long)label.DataAreas[0].OffsetBytes
            : metadataPv?.PeStartBytes;
        if (label is not null && metadata?.VolumeGroup is { } vg)
        {
            if (metadataPv is null)
            {
                findings.Add(new Finding("LVM_PV_NOT_IN_METADATA", Severity.Warning,
                    $"PV {label.PvUuidFormatted} is not listed in the metadata of VG {vg.Name}", chosen!.TextOffsetBytes));
            }
            else if (peStart is { } ps && ps != metadataPv.PeStartBytes)
            {
                findings.Add(new Finding("LVM_PE_START_MISMATCH", Severity.Warning,
                    $"label data area starts at {ps}, metadata pe_start of {metadataPv.Key} is {metadataPv.PeStartBytes} bytes",
                    label.OffsetBytes + label.PvHeaderOffset + LvmLabelLayout.DiskLocationsOffset, "pe_start",
                    ps.ToString(), metadataPv.PeStartBytes.ToString()));
            }
        }

        return new LvmPhysicalVolumeReport
        {
            SourceName = pv.Name,
            Label = label,
            PeStartBytes = peStart,
            Mdas = mdas,
            Metadata = metadata,
            MetadataPv = metadataPv,
            Findings = findings,
        };
    }

    private static LvmMetadataAreaReport? ReadArea(IBlockSource pv, int index, long offset, long labelSize, bool probing, List<Finding> findings)
    {
        var where = $"mda{index}";
        if (offset < 0 || offset > pv.LengthBytes - LvmMdaHeaderLayout.HeaderBytes)
        {
            if (!probing)
            {
                findings.Add(new Finding("LVM_MDA_OUT_OF_RANGE", Severity.Error,
                    $"{where} header at {offset} is outside the {pv.LengthBytes}-byte source", null, where, offset.ToString()));
            }

            return null;
        }

        var sector = new byte[LvmMdaHeaderLayout.HeaderBytes];
        if (!TryRead(pv, offset, sector, findings, $"{where} header"))
        {
            return null;
        }

        var header = LvmMdaHeader.Decode(sector, offset);
        if (probing)
        {
            if (!header.MagicValid)
            {
                return null;
            }

            findings.Add(new Finding("LVM_MDA_WITHOUT_LABEL", Severity.Warning,
                $"no label, but an mda header with valid magic is at the default offset {offset}; reading it", offset));
        }

        var headerFindings = header.Validate(offset);
        findings.AddRange(headerFindings);
        var report = new LvmMetadataAreaReport
        {
            Index = index,
            HeaderOffsetBytes = offset,
            SizeBytes = labelSize,
            Header = header,
            HeaderValid = headerFindings.All(f => f.Severity != Severity.Error),
            Committed = header.Committed,
        };
        if (!probing && (ulong)labelSize != header.SizeBytes)
        {
            findings.Add(new Finding("LVM_MDA_SIZE_MISMATCH", Severity.Warning,
                $"{where}: label says {labelSize} bytes, header says {header.SizeBytes}; using the header's size for the ring",
                offset + LvmMdaHeaderLayout.SizeOffset, "mda_header.size", header.SizeBytes.ToString(), labelSize.ToString()));
        }

        if (!header.MagicValid)
        {
            return report; // not an mda header: its slots mean nothing
        }

        if (header.Committed.IsEmpty)
        {
            findings.Add(new Finding("LVM_MDA_EMPTY", Severity.Info,
                $"{where} has no committed metadata (orphan PV, or slots cleared by vgremove; older copies may remain in the ring)",
                offset + LvmMdaHeaderLayout.RawLocationsOffset, "mda_header.raw_locn[0]"));
            return report;
        }

        if (header.Committed.IsIgnored)
        {
            findings.Add(new Finding("LVM_MDA_IGNORED", Severity.Info,
                $"{where} is marked ignored (RAW_LOCN_IGNORED); LVM does not use its text",
                offset + LvmMdaHeaderLayout.RawLocationsOffset + LvmMdaHeaderLayout.RawFlagsOffset, "mda_header.raw_locn[0].flags"));
        }

        if (header.TextExtent(header.Committed) is not { } extent)
        {
            return report; // LVM_MDA_RAW_LOCN already reported by Validate
        }

        if (header.SizeBytes > (ulong)pv.LengthBytes || offset > pv.LengthBytes - (long)header.SizeBytes)
        {
            findings.Add(new Finding("LVM_MDA_OUT_OF_RANGE", Severity.Error,
                $"{where} at {offset} with size {header.SizeBytes} runs past the end of the {pv.LengthBytes}-byte source",
                offset + LvmMdaHeaderLayout.SizeOffset, "mda_header.size"));
            return report;
        }

        var text = new byte[extent.LengthBytes];
        if (!TryRead(pv, offset + extent.FirstOffsetBytes, text.AsSpan(0, extent.FirstLengthBytes), findings, $"{where} text") ||
            !TryRead(pv, offset + extent.WrapOffsetBytes, text.AsSpan(extent.FirstLengthBytes), findings, $"{where} text (wrapped part)"))
        {
            return report;
        }

        // format-text.c: the checksum of a wrapped copy is continued over the part at offset 512.
        var crc = LvmCrc.Continue(LvmCrc.Compute(text.AsSpan(0, extent.FirstLengthBytes)), text.AsSpan(extent.FirstLengthBytes));
        var textAt = offset + extent.FirstOffsetBytes;
        if (crc != header.Committed.Checksum)
        {
            findings.Add(new Finding("LVM_METADATA_CRC", Severity.Error,
                $"{where} committed text ({extent.LengthBytes} bytes at {textAt}{(extent.WrapLengthBytes > 0 ? ", wrapped" : "")}) has CRC {Hex.U32(crc)}, raw_locn says {Hex.U32(header.Committed.Checksum)}",
                textAt, "mda_header.raw_locn[0].checksum", Hex.U32(header.Committed.Checksum), Hex.U32(crc)));
        }

        if (text[^1] != 0)
        {
            findings.Add(new Finding("LVM_METADATA_TERMINATOR", Severity.Warning,
                $"{where} committed text does not end with NUL", offset + extent.MdaOffsetOf(text.Length - 1)));
        }

        var metadata = LvmMetadata.Parse(text);
        foreach (var f in metadata.Findings)
        {
            var absolute = f.OffsetBytes is { } o ? offset + extent.MdaOffsetOf(o) : (long?)null;
            var moved = f with { OffsetBytes = absolute, Message = $"{where}: {f.Message}" };
            findings.Add(f.Code.StartsWith("LVM_TEXT_", StringComparison.Ordinal) && f.Severity == Severity.Error
                ? moved with { Code = "LVM_METADATA_PARSE", Field = f.Code }
                : moved);
        }

        return new LvmMetadataAreaReport
        {
            Index = report.Index,
            HeaderOffsetBytes = offset,
            SizeBytes = labelSize,
            Header = header,
            HeaderValid = report.HeaderValid,
            Committed = header.Committed,
            TextExtent = extent,
            Text = text,
            ComputedTextCrc = crc,
            TextCrcValid = crc == header.Committed.Checksum,
            Metadata = metadata,
        };
    }

    private static void CompareAreas(List<LvmMetadataAreaReport> mdas, List<Finding> findings)
    {
        var withText = mdas.Where(m => m.Text is not null && !m.Committed!.Value.IsIgnored).ToList();
        for (var i = 1; i < withText.Count; i++)
        {
            if (withText[i].ComputedTextCrc != withText[0].ComputedTextCrc)
            {
                findings.Add(new Finding("LVM_MDA_MISMATCH", Severity.Warning,
                    $"mda{withText[0].Index} (seqno {withText[0].Metadata?.VolumeGroup?.Seqno}) and mda{withText[i].Index} (seqno {withText[i].Metadata?.VolumeGroup?.Seqno}) hold different committed text",
                    withText[i].TextOffsetBytes));
            }
        }
    }

    private static bool TryRead(IBlockSource pv, long offset, Span<byte> buffer, List<Finding> findings, string what)
    {
        try
        {
            pv.ReadExactlyAt(offset, buffer);
            return true;
        }
        catch (SourceReadException e)
        {
            findings.Add(new Finding("LVM_READ", Severity.Error, $"cannot read {what}: {e.Message}", offset));
            return false;
        }
    }
}
