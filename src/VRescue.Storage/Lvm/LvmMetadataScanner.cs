// SPDX-License-Identifier: MIT
using System.Buffers;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;

namespace VRescue.Storage.Lvm;

/// <summary>How a metadata area's geometry (header offset and size) became known.</summary>
public enum LvmAreaSource
{
    /// <summary>Listed in a label LVM accepts (or a LABELONE candidate with sane lists).</summary>
    Label,

    /// <summary>An mda header with valid magic whose <c>start</c> equals where it was found.</summary>
    Header,

    /// <summary>Derived from a recovered text's pe_start: mda1 = (4096, pe_start − 4096), as <c>pvck --repair</c> assumes.</summary>
    PeStart,
}

/// <summary>One metadata area whose ring was scanned.</summary>
public sealed class LvmScannedArea
{
    /// <summary>1 for the area nearest the PV start, 2 for the next.</summary>
    public int Index { get; internal set; }

    /// <summary>Where the mda_header is, from the PV start.</summary>
    public required long HeaderOffsetBytes { get; init; }

    /// <summary>Whole area including the 512-byte header.</summary>
    public required long SizeBytes { get; init; }

    public required LvmAreaSource Source { get; init; }

    /// <summary>The header as decoded (null when the sector could not be read).</summary>
    public LvmMdaHeader? Header { get; init; }

    /// <summary>True when the header passes LVM's checks; only then do its slots mark a copy committed.</summary>
    public bool HeaderValid { get; init; }

    /// <summary>Ring length in bytes (area size minus the header).</summary>
    public long RingBytes => SizeBytes - LvmMdaHeaderLayout.HeaderBytes;
}

/// <summary>A VG text copy found on a PV: where, its bytes (NUL included), CRC and parsed model.</summary>
public sealed class LvmTextCopy
{
    /// <summary>Offset of the first byte from the PV start.</summary>
    public required long OffsetBytes { get; init; }

    /// <summary>Bytes including the trailing NUL (what raw_locn.size counts).</summary>
    public int LengthBytes => Text.Length;

    /// <summary>The text as stored, wrap reassembled, NUL included.</summary>
    public required byte[] Text { get; init; }

    /// <summary>LVM CRC of <see cref="Text"/> (the value raw_locn.checksum would hold).</summary>
    public required uint Crc { get; init; }

    /// <summary>The area whose ring holds it; null for a copy found by the raw scan outside any known ring.</summary>
    public LvmScannedArea? Area { get; init; }

    /// <summary>Mda-relative offset (≥ 512) when <see cref="Area"/> is set.</summary>
    public long? RingOffsetBytes { get; init; }

    /// <summary>True when the copy continues at ring offset 512.</summary>
    public required bool Wrapped { get; init; }

    /// <summary>raw_locn[0] of a valid header points here with this CRC.</summary>
    public bool Committed { get; set; }

    /// <summary>raw_locn[1] of a valid header points here (a write interrupted before commit).</summary>
    public bool Precommitted { get; set; }

    /// <summary>
    /// Position in write order within its ring or scanned region (0 = oldest). LVM writes each copy after the
    /// committed one and wraps (format-text.c _next_rlocn_offset), so the copy after the newest is the oldest.
    /// </summary>
    public long WriteOrder { get; set; }

    public required LvmMetadata Metadata { get; init; }

    /// <summary>The VG (never null for a returned copy).</summary>
    public LvmVolumeGroup VolumeGroup => Metadata.VolumeGroup!;
}

/// <summary>Everything a scan found on one PV candidate.</summary>
public sealed class LvmMetadataScanReport
{
    public required string SourceName { get; init; }

    /// <summary>The label LVM would use, or a LABELONE candidate; null when sectors 0..3 hold none.</summary>
    public LvmLabel? Label { get; init; }

    public required IReadOnlyList<LvmScannedArea> Areas { get; init; }

    /// <summary>Copies in PV offset order.</summary>
    public required IReadOnlyList<LvmTextCopy> Copies { get; init; }

    /// <summary>Bytes examined (rings plus raw regions).</summary>
    public required long ScannedBytes { get; init; }

    public required IReadOnlyList<Finding> Findings { get; init; }
}

/// <summary>Progress of a scan: bytes examined so far out of the planned total.</summary>
public readonly record struct LvmScanProgress(string SourceName, long DoneBytes, long TotalBytes);

/// <summary>
/// Finds every VG metadata text copy on a PV, read-only: through mda headers when valid, by scanning each whole
/// ring at 512-byte steps for text that starts like VG metadata (<c>name {</c>, <c>id = "</c>, <c>seqno = </c>,
/// the order pvck --dump metadata_search relies on), and by scanning the head of the PV (up to pe_start) outside
/// known rings when label or headers are gone. Wrapped copies are reassembled; copies of any VG are kept, so an
/// old VG under a re-created one shows up too. Bounded: ring and region sizes, text size, and total parse work.
/// </summary>
public static class LvmMetadataScanner
{
    /// <summary>Largest ring read (a XenServer ring is 10 MiB; LVM allows larger, rarely used).</summary>
    public const long MaxRingBytes = 256L << 20;

    /// <summary>Head region scanned outside known rings when nothing says where pe_start is.</summary>
    public const long DefaultHeadScanBytes = 16L << 20;

    /// <summary>Largest head region scanned (pe_start from recovered text can extend the default up to here).</summary>
    public const long MaxHeadScanBytes = 256L << 20;

    /// <summary>Tail searched for an mda2 header.</summary>
    public const long TailScanBytes = 16L << 20;

    /// <summary>Parse work allowed per region, as a multiple of its size (stops hostile overlapping candidates).</summary>
    private const int ParseBudgetFactor = 8;

    private const int Sector = 512;
    private const int ReadChunkBytes = 4 << 20;

    /// <summary>Scans <paramref name="pv"/> (a view starting at the PV's byte 0, or at a candidate start).</summary>
    public static LvmMetadataScanReport Scan(IBlockSource pv, IProgress<LvmScanProgress>? progress = null, CancellationToken cancel = default)
    {
        var findings = new List<Finding>();
        var head = new byte[(int)Math.Min(LvmLabelLayout.ScanBytes, pv.LengthBytes)];
        var headRead = ReadInto(pv, 0, head, findings, "label sectors");
        var label = headRead == head.Length && head.Length == LvmLabelLayout.ScanBytes ? LvmLabel.TryFind(head, findings) : null;

        var areas = new List<LvmScannedArea>();
        if (label is not null)
        {
            foreach (var d in label.MetadataAreas.Take(2))
            {
                if (d.OffsetBytes <= (ulong)pv.LengthBytes && d.SizeBytes <= (ulong)pv.LengthBytes)
                {
                    AddArea(pv, areas, (long)d.OffsetBytes, (long)d.SizeBytes, LvmAreaSource.Label, findings);
                }
            }
        }

        var headLimit = Math.Min(pv.LengthBytes, DefaultHeadScanBytes);
        if (label?.DataAreas is [var da, ..] && da.OffsetBytes <= MaxHeadScanBytes)
        {
            headLimit = Math.Min(pv.LengthBytes, Math.Max(headLimit, (long)da.OffsetBytes));
        }

        FindHeaders(pv, areas, 0, headLimit, findings);
        FindHeaders(pv, areas, Math.Max(headLimit, pv.LengthBytes - TailScanBytes), pv.LengthBytes, findings);

        var total = areas.Sum(a => Math.Min(a.RingBytes, MaxRingBytes)) + headLimit;
        long done = 0;
        void Report(long n)
        {
            done += n;
            progress?.Report(new LvmScanProgress(pv.Name, done, total));
        }

        var copies = new List<LvmTextCopy>();
        foreach (var area in areas.ToList())
        {
            cancel.ThrowIfCancellationRequested();
            copies.AddRange(ScanArea(pv, area, findings, Report, cancel));
        }

        // Outside the known rings: text left by a ring whose header and label are gone, or by an older layout.
        var raw = ScanRaw(pv, 0, headLimit, areas, findings, Report, cancel);

        // A recovered text tells pe_start; when no area is known at 4096, mda1 is (4096, pe_start - 4096): rescan it
        // as a ring so wrapped copies are reassembled.
        if (!areas.Any(a => a.HeaderOffsetBytes == LvmPhysicalVolumeReader.DefaultMda1OffsetBytes))
        {
            var derived = raw.Concat(copies)
                .SelectMany(c => c.VolumeGroup.PhysicalVolumes)
                .Select(p => p.PeStartBytes)
                .Where(b => b > LvmPhysicalVolumeReader.DefaultMda1OffsetBytes + 2 * Sector && b <= pv.LengthBytes && b <= MaxRingBytes)
                .GroupBy(b => b).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault();
            if (derived > 0)
            {
                var area = new LvmScannedArea
                {
                    HeaderOffsetBytes = LvmPhysicalVolumeReader.DefaultMda1OffsetBytes,
                    SizeBytes = derived - LvmPhysicalVolumeReader.DefaultMda1OffsetBytes,
                    Source = LvmAreaSource.PeStart,
                };
                findings.Add(new Finding("LVM_SCAN_AREA_DERIVED", Severity.Info,
                    $"no valid header for mda1: assuming the ring at {area.HeaderOffsetBytes} with size {area.SizeBytes} from the recovered metadata's pe_start ({derived})",
                    area.HeaderOffsetBytes));
                areas.Add(area);
                var rescanned = ScanArea(pv, area, findings, _ => { }, cancel);
                var covered = rescanned.Select(c => c.OffsetBytes).ToHashSet();
                raw.RemoveAll(c => covered.Contains(c.OffsetBytes));
                copies.AddRange(rescanned);
            }
        }

        copies.AddRange(raw);
        areas.Sort((a, b) => a.HeaderOffsetBytes.CompareTo(b.HeaderOffsetBytes));
        for (var i = 0; i < areas.Count; i++)
        {
            areas[i].Index = i + 1;
        }

        var result = copies.OrderBy(c => c.OffsetBytes).ToList();
        AssignWriteOrder(result);
        return new LvmMetadataScanReport
        {
            SourceName = pv.Name,
            Label = label,
            Areas = areas,
            Copies = result,
            ScannedBytes = done,
            Findings = findings,
        };
    }

    /// <summary>
    /// True when <paramref name="s"/> starts like on-disk VG text: a VG name, " {\n", then an <c>id = "</c> line
    /// and a <c>seqno = </c> line within the first 256 bytes (pvck's metadata_search test, tools/pvck.c).
    /// </summary>
    public static bool LooksLikeVgTextStart(ReadOnlySpan<byte> s)
    {
        var n = 0;
        while (n < s.Length && n < 128 && IsNameChar(s[n]))
        {
            n++;
        }

        if (n == 0 || s[0] == (byte)'-' || !s[n..].StartsWith(" {\n"u8))
        {
            return false;
        }

        var rest = s[(n + 3)..];
        if (!rest.StartsWith("id = \""u8))
        {
            return false;
        }

        var window = rest[..Math.Min(rest.Length, 256)];
        var nul = window.IndexOf((byte)0);
        if (nul >= 0)
        {
            window = window[..nul];
        }

        return window.IndexOf("\nseqno = "u8) > 0;
    }

    private static bool IsNameChar(byte c) =>
        c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or >= (byte)'0' and <= (byte)'9'
            or (byte)'+' or (byte)'_' or (byte)'.' or (byte)'-';

    private static void AddArea(IBlockSource pv, List<LvmScannedArea> areas, long offset, long labelSize, LvmAreaSource source, List<Finding> findings)
    {
        if (areas.Any(a => a.HeaderOffsetBytes == offset) || offset < 0 || offset > pv.LengthBytes - Sector)
        {
            return;
        }

        var sector = new byte[Sector];
        if (ReadInto(pv, offset, sector, findings, "mda header") < Sector)
        {
            return;
        }

        var header = LvmMdaHeader.Decode(sector, offset);
        var valid = header.Validate(offset).All(f => f.Severity != Severity.Error);
        var size = valid || (header.MagicValid && header.StartBytes == (ulong)offset && header.SizeBytes <= (ulong)pv.LengthBytes)
            ? (long)header.SizeBytes
            : labelSize;
        if (size <= Sector || offset > pv.LengthBytes - size)
        {
            size = Math.Min(size, pv.LengthBytes - offset);
            if (size <= Sector)
            {
                return;
            }
        }

        if (size - Sector > MaxRingBytes)
        {
            findings.Add(new Finding("LVM_SCAN_RING_TRUNCATED", Severity.Warning,
                $"the ring at {offset} claims {size} bytes; only the first {MaxRingBytes} are scanned", offset + LvmMdaHeaderLayout.SizeOffset,
                "mda_header.size", size.ToString(), $"<= {MaxRingBytes + Sector}"));
        }

        areas.Add(new LvmScannedArea { HeaderOffsetBytes = offset, SizeBytes = size, Source = source, Header = header, HeaderValid = valid });
    }

    /// <summary>Every 512-byte sector in [from, to) whose bytes 4..19 are the mda magic and whose start matches.</summary>
    private static void FindHeaders(IBlockSource pv, List<LvmScannedArea> areas, long from, long to, List<Finding> findings)
    {
        from = from / Sector * Sector;
        var buffer = ArrayPool<byte>.Shared.Rent(ReadChunkBytes);
        try
        {
            for (var at = from; at < to; at += ReadChunkBytes)
            {
                var n = ReadInto(pv, at, buffer.AsSpan(0, (int)Math.Min(ReadChunkBytes, to - at)), findings, "header search");
                for (var i = 0; i + Sector <= n; i += Sector)
                {
                    if (!buffer.AsSpan(i + LvmMdaHeaderLayout.MagicOffset, LvmMdaHeaderLayout.MagicLength).SequenceEqual(LvmMdaHeaderLayout.Magic))
                    {
                        continue;
                    }

                    var header = LvmMdaHeader.Decode(buffer.AsSpan(i, Sector), at + i);
                    if (header.StartBytes == (ulong)(at + i))
                    {
                        AddArea(pv, areas, at + i, 0, LvmAreaSource.Header, findings);
                    }
                    else if (!areas.Any(a => a.HeaderOffsetBytes == at + i))
                    {
                        findings.Add(new Finding("LVM_SCAN_HEADER_ELSEWHERE", Severity.Info,
                            $"mda header magic at {at + i} says it belongs at {header.StartBytes}: the PV may start {at + i - (long)Math.Min(header.StartBytes, long.MaxValue)} bytes from here, or it is a stale copy",
                            at + i + LvmMdaHeaderLayout.StartOffset, "mda_header.start", header.StartBytes.ToString(), (at + i).ToString()));
                    }
                }

                if (n < Math.Min(ReadChunkBytes, to - at))
                {
                    break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static List<LvmTextCopy> ScanArea(IBlockSource pv, LvmScannedArea area, List<Finding> findings, Action<long> report, CancellationToken cancel)
    {
        var ringStart = area.HeaderOffsetBytes + Sector;
        var ringBytes = (int)Math.Min(Math.Min(area.RingBytes, MaxRingBytes), pv.LengthBytes - ringStart);
        if (ringBytes <= 0)
        {
            return [];
        }

        var ring = new byte[ringBytes];
        var read = ReadInto(pv, ringStart, ring, findings, $"ring at {area.HeaderOffsetBytes}", report);
        if (read < ringBytes)
        {
            findings.Add(new Finding("LVM_SCAN_RING_SHORT", Severity.Warning,
                $"only {read} of {ringBytes} ring bytes at {ringStart} could be read", ringStart + read));
            Array.Clear(ring, read, ringBytes - read);
        }

        var copies = ScanBuffer(ring, ringStart, wrap: read == ringBytes, area, findings, cancel);
        if (area.HeaderValid && area.Header is { } h)
        {
            foreach (var c in copies)
            {
                c.Committed = Points(h.Committed, c);
                c.Precommitted = Points(h.Precommitted, c);
            }

            if (!h.Committed.IsEmpty && !copies.Any(c => c.Committed))
            {
                findings.Add(new Finding("LVM_SCAN_COMMITTED_MISSING", Severity.Warning,
                    $"the header at {area.HeaderOffsetBytes} commits text at ring offset {h.Committed.OffsetBytes} (crc {Hex.U32(h.Committed.Checksum)}), but no readable copy with that CRC is there",
                    area.HeaderOffsetBytes + LvmMdaHeaderLayout.RawLocationsOffset, "mda_header.raw_locn[0]"));
            }
        }

        return copies;
    }

    private static bool Points(LvmRawLocation slot, LvmTextCopy c) =>
        !slot.IsEmpty && (long)slot.OffsetBytes == c.RingOffsetBytes && (long)slot.SizeBytes == c.LengthBytes && slot.Checksum == c.Crc;

    private static List<LvmTextCopy> ScanRaw(IBlockSource pv, long from, long to, List<LvmScannedArea> areas, List<Finding> findings,
        Action<long> report, CancellationToken cancel)
    {
        var length = (int)Math.Max(0, to - from);
        if (length == 0)
        {
            return [];
        }

        var region = new byte[length];
        var read = ReadInto(pv, from, region, findings, "head region", report);
        Array.Clear(region, read, length - read);

        // Known rings were scanned with wrap handling: blank them here so their copies are not found twice.
        foreach (var a in areas)
        {
            var s = Math.Max(from, a.HeaderOffsetBytes);
            var e = Math.Min(to, a.HeaderOffsetBytes + Sector + Math.Min(a.RingBytes, MaxRingBytes));
            if (e > s)
            {
                Array.Clear(region, (int)(s - from), (int)(e - s));
            }
        }

        return ScanBuffer(region, from, wrap: false, null, findings, cancel);
    }

    /// <summary>Candidates at every 512-byte step of <paramref name="buf"/>; the ring wraps back to its start when <paramref name="wrap"/>.</summary>
    private static List<LvmTextCopy> ScanBuffer(byte[] buf, long baseOffset, bool wrap, LvmScannedArea? area, List<Finding> findings, CancellationToken cancel)
    {
        var copies = new List<LvmTextCopy>();
        var nextNul = NextNulPerSector(buf);
        var budget = (long)buf.Length * ParseBudgetFactor + (1 << 20);
        var skipUntil = 0;
        var unparsable = 0;
        for (var i = 0; i + 16 <= buf.Length; i += Sector)
        {
            if ((i & 0xFFFFF) == 0)
            {
                cancel.ThrowIfCancellationRequested();
            }

            if (i < skipUntil || !IsNameChar(buf[i]) || !LooksLikeVgTextStart(buf.AsSpan(i, Math.Min(buf.Length - i, 512))))
            {
                continue;
            }

            var nul = nextNul[i / Sector] is var sNul && sNul >= 0 ? FirstNul(buf, i, sNul) : -1;
            byte[] text;
            var wrapped = false;
            if (nul >= 0)
            {
                text = buf.AsSpan(i, nul - i + 1).ToArray();
            }
            else if (wrap && buf.AsSpan(0, i).IndexOf((byte)0) is var w and >= 0)
            {
                wrapped = true;
                text = new byte[buf.Length - i + w + 1];
                buf.AsSpan(i).CopyTo(text);
                buf.AsSpan(0, w + 1).CopyTo(text.AsSpan(buf.Length - i));
            }
            else
            {
                findings.Add(new Finding("LVM_SCAN_TEXT_UNTERMINATED", Severity.Warning,
                    $"VG text starting at {baseOffset + i} has no NUL before the end of the {(area is null ? "scanned region" : "ring")}", baseOffset + i));
                continue;
            }

            if (text.Length > LvmMdaHeader.MaxTextBytes)
            {
                findings.Add(new Finding("LVM_SCAN_TEXT_TOO_LARGE", Severity.Warning,
                    $"VG text at {baseOffset + i} is {text.Length} bytes, more than the {LvmMdaHeader.MaxTextBytes} VRescue parses", baseOffset + i));
                continue;
            }

            budget -= text.Length;
            if (budget < 0)
            {
                findings.Add(new Finding("LVM_SCAN_BUDGET", Severity.Warning,
                    $"stopped parsing candidates at {baseOffset + i}: too much text overlaps (hostile or garbage data)", baseOffset + i));
                break;
            }

            var metadata = LvmMetadata.Parse(text);
            var syntax = metadata.Findings.FirstOrDefault(f => f.Severity == Severity.Error && f.Code.StartsWith("LVM_TEXT_", StringComparison.Ordinal));
            if (metadata.VolumeGroup is null || syntax is not null)
            {
                if (unparsable++ < 32)
                {
                    var why = syntax?.Message ?? "no VG section";
                    findings.Add(new Finding("LVM_SCAN_TEXT_UNPARSABLE", Severity.Warning,
                        $"VG-like text at {baseOffset + i} ({text.Length} bytes) does not parse (partly overwritten copy?): {why}", baseOffset + i));
                }

                continue;
            }

            // The version key is VG uuid + seqno: a copy without both is reported, not listed.
            if (metadata.VolumeGroup.Section.GetInt64("seqno") is not >= 0 || !LvmUuid.IsValid(metadata.VolumeGroup.Id))
            {
                findings.Add(new Finding("LVM_SCAN_TEXT_UNUSABLE", Severity.Warning,
                    $"VG text at {baseOffset + i} parses but has no usable seqno or VG id (seqno '{metadata.VolumeGroup.Section.Value("seqno")}', id '{metadata.VolumeGroup.Id}')",
                    baseOffset + i));
                continue;
            }

            var ringOffset = area is null ? (long?)null : Sector + i;
            copies.Add(new LvmTextCopy
            {
                OffsetBytes = baseOffset + i,
                Text = text,
                Crc = LvmCrc.Compute(text),
                Area = area,
                RingOffsetBytes = ringOffset,
                Wrapped = wrapped,
                Metadata = metadata,
            });
            if (!wrapped)
            {
                skipUntil = nul + 1;
            }
        }

        if (unparsable > 32)
        {
            findings.Add(new Finding("LVM_SCAN_TEXT_UNPARSABLE", Severity.Warning, $"{unparsable - 32} more unparsable candidates not listed", baseOffset));
        }

        return copies;
    }

    /// <summary>For each 512-byte sector, the first sector index (≥ it) that contains a NUL, or -1.</summary>
    private static int[] NextNulPerSector(byte[] buf)
    {
        var count = (buf.Length + Sector - 1) / Sector;
        var next = new int[count];
        var last = -1;
        for (var s = count - 1; s >= 0; s--)
        {
            var start = s * Sector;
            if (buf.AsSpan(start, Math.Min(Sector, buf.Length - start)).IndexOf((byte)0) >= 0)
            {
                last = s;
            }

            next[s] = last;
        }

        return next;
    }

    private static int FirstNul(byte[] buf, int from, int sector)
    {
        var start = Math.Max(from, sector * Sector);
        var idx = buf.AsSpan(start).IndexOf((byte)0);
        return idx < 0 ? -1 : start + idx;
    }

    /// <summary>
    /// Write order per ring (or raw region): the anchor is the committed copy, else the newest by creation time and
    /// seqno; the copy just after the anchor is the oldest, then on around the ring to the anchor.
    /// </summary>
    private static void AssignWriteOrder(List<LvmTextCopy> copies)
    {
        foreach (var group in copies.GroupBy(c => c.Area?.HeaderOffsetBytes ?? -1))
        {
            var list = group.ToList();
            var anchor = list.FirstOrDefault(c => c.Committed)
                ?? list.MaxBy(c => (c.Metadata.Trailer.CreationTimeUnix ?? 0, c.VolumeGroup.Seqno, c.OffsetBytes))!;
            var span = group.Key < 0 ? long.MaxValue / 4 : anchor.Area!.RingBytes;
            var origin = group.Key < 0 ? anchor.OffsetBytes : anchor.RingOffsetBytes!.Value;
            foreach (var c in list)
            {
                var pos = group.Key < 0 ? c.OffsetBytes : c.RingOffsetBytes!.Value;
                var distance = ((pos - origin) % span + span) % span; // 0 for the anchor, small just after it
                c.WriteOrder = distance == 0 ? span : distance;
            }
        }
    }

    private static int ReadInto(IBlockSource pv, long offset, Span<byte> buffer, List<Finding> findings, string what, Action<long>? report = null)
    {
        var done = 0;
        try
        {
            while (done < buffer.Length)
            {
                var n = pv.ReadAt(offset + done, buffer.Slice(done, Math.Min(ReadChunkBytes, buffer.Length - done)));
                if (n <= 0)
                {
                    break;
                }

                done += n;
                report?.Invoke(n);
            }
        }
        catch (SourceReadException e)
        {
            findings.Add(new Finding("LVM_READ", Severity.Error, $"cannot read {what}: {e.Message}", e.OffsetBytes));
        }

        return done;
    }
}
