// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Xen;

/// <summary>
/// The MGT LV of an LVHD SR (xapi-project/sm libs/sm/srmetadata.py, LVMMetadataHandler): 512-byte sectors of
/// space-padded XML fragments. Bytes 0-511 header, 512-2047 SR info, then 1024-byte VDI records.
/// Decoding is pure and bounded: the caller reads <see cref="BytesToRead"/> bytes of the LV (the whole 4 MiB LV
/// to also get deleted records beyond the header length) and passes them in.
/// </summary>
public sealed record XenMgtVolume(
    XenMgtHeader Header,
    XenMgtSrInfo? SrInfo,
    IReadOnlyList<XenMgtVdiRecord> Records,
    IReadOnlyList<Finding> Findings)
{
    public const int SectorBytes = 512;
    public const int FirstRecordOffsetBytes = 2048;
    public const int RecordSizeBytes = 1024;

    /// <summary>The MGT LV is 4 MiB (LVHDSR.py), so at most (4 MiB - 2048) / 1024 = 4094 records.</summary>
    public const int MaxVolumeBytes = 4 * 1024 * 1024;
    public const int MaxRecords = (MaxVolumeBytes - FirstRecordOffsetBytes) / RecordSizeBytes;

    private const string XmlDeclaration = "<?xml";
    private const string VdiOpen = "<vdi>";
    private const string VdiClose = "</vdi>";

    /// <summary>Records SM would return: inside the header length and not marked deleted.</summary>
    public IEnumerable<XenMgtVdiRecord> LiveRecords => Records.Where(r => r.WithinHeaderLength && !r.IsDeleted);

    /// <summary>
    /// How many bytes to read given sector 0: the header length when it is valid, else the whole LV.
    /// Read <see cref="MaxVolumeBytes"/> instead to recover deleted records beyond the length.
    /// </summary>
    public static int BytesToRead(ReadOnlySpan<byte> sector0)
    {
        var h = XenMgtHeader.Decode(sector0);
        return h.HasMagic && h.LengthBytes is { } l && l >= FirstRecordOffsetBytes && l <= MaxVolumeBytes ? (int)l : MaxVolumeBytes;
    }

    /// <summary>Bytes Encode writes for <paramref name="recordCount"/> records.</summary>
    public static int EncodedLength(int recordCount) =>
        recordCount is < 0 or > MaxRecords
            ? throw new ArgumentOutOfRangeException(nameof(recordCount))
            : FirstRecordOffsetBytes + RecordSizeBytes * recordCount;

    /// <summary>Decodes header, SR info and every record slot; never throws on bad bytes, reports findings instead.</summary>
    public static XenMgtVolume Decode(ReadOnlySpan<byte> volume)
    {
        var findings = new List<Finding>();
        if (volume.Length > MaxVolumeBytes)
        {
            findings.Add(new("XEN_MGT_INPUT_CAPPED", Severity.Info, $"Only the first {MaxVolumeBytes} bytes (the MGT LV size) were decoded",
                MaxVolumeBytes, Stored: volume.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            volume = volume[..MaxVolumeBytes];
        }

        var header = XenMgtHeader.Decode(volume);
        var headerFindings = header.Validate();
        findings.AddRange(headerFindings);
        long? length = headerFindings.Any(f => f.Severity == Severity.Error) ? null : header.LengthBytes;
        if (volume.Length < (length ?? SectorBytes))
        {
            findings.Add(new("XEN_MGT_TRUNCATED", Severity.Error, $"MGT data is {volume.Length} bytes; the header says {length ?? SectorBytes} are in use",
                volume.Length, "length", volume.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
                (length ?? SectorBytes).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        XenMgtSrInfo? srInfo = null;
        if (volume.Length >= FirstRecordOffsetBytes)
        {
            srInfo = DecodeSrInfo(volume[XenMgtSrInfo.OffsetBytes..FirstRecordOffsetBytes], findings);
        }

        var records = new List<XenMgtVdiRecord>();
        for (var slot = 0; slot < MaxRecords; slot++)
        {
            var offset = FirstRecordOffsetBytes + slot * RecordSizeBytes;
            if (offset >= volume.Length)
            {
                break;
            }

            var within = length is { } l && offset < l;
            var bytes = volume.Slice(offset, Math.Min(RecordSizeBytes, volume.Length - offset));
            if (DecodeRecord(bytes, slot, offset, within, findings) is { } record)
            {
                records.Add(record);
            }
        }

        return new XenMgtVolume(header, srInfo, records, findings);
    }

    /// <summary><see cref="Decode"/>, then throws <see cref="CorruptDataException"/> for the first error finding.</summary>
    public static XenMgtVolume Parse(ReadOnlySpan<byte> volume)
    {
        var v = Decode(volume);
        CorruptDataException.ThrowIfErrors("xen-mgt", "MGT volume", v.Findings);
        return v;
    }

    /// <summary>
    /// Writes header, SR info and records (slot i = list index) exactly as srmetadata.py writeMetadataInternal does;
    /// bytes of <paramref name="destination"/> past <see cref="EncodedLength"/> are left alone. The header length is
    /// <see cref="EncodedLength"/> unless <paramref name="headerLengthBytes"/> overrides it (e.g. after a last-slot delete).
    /// </summary>
    public static void Encode(XenMgtSrInfo srInfo, IReadOnlyList<XenMgtVdiRecord> records, Span<byte> destination, long? headerLengthBytes = null)
    {
        ArgumentNullException.ThrowIfNull(srInfo);
        ArgumentNullException.ThrowIfNull(records);
        var length = EncodedLength(records.Count);
        if (destination.Length < length)
        {
            throw new ArgumentException($"destination holds {destination.Length} bytes; {length} needed", nameof(destination));
        }

        XenMgtHeader.Encode(headerLengthBytes ?? length, destination);
        var sr = destination.Slice(XenMgtSrInfo.OffsetBytes, XenMgtSrInfo.SizeBytes);
        var sector1 = $"<?xml version=\"1.0\" ?><uuid>{srInfo.UuidText}</uuid><allocation>{srInfo.Allocation}</allocation>";
        WritePadded(Encoding.UTF8.GetBytes(sector1), sr[..SectorBytes]);
        WriteSrSector("name_label", srInfo.NameLabel ?? "", sr.Slice(SectorBytes, SectorBytes));
        WriteSrSector("name_description", srInfo.NameDescription ?? "", sr.Slice(2 * SectorBytes, SectorBytes));
        for (var i = 0; i < records.Count; i++)
        {
            records[i].Encode(destination.Slice(FirstRecordOffsetBytes + i * RecordSizeBytes, RecordSizeBytes));
        }
    }

    /// <summary>Encodes into a fresh buffer of <see cref="EncodedLength"/> bytes.</summary>
    public static byte[] Encode(XenMgtSrInfo srInfo, IReadOnlyList<XenMgtVdiRecord> records, long? headerLengthBytes = null)
    {
        var buffer = new byte[EncodedLength(records.Count)];
        Encode(srInfo, records, buffer, headerLengthBytes);
        return buffer;
    }

    // srmetadata.py buildXMLSector: escaped value cut on a UTF-8 boundary to 512 - 2*len(tag) - 5 bytes when too long.
    private static void WriteSrSector(string tag, string value, Span<byte> sector)
    {
        var valueBytes = Encoding.UTF8.GetBytes(XenMgtXml.Escape(value));
        var max = SectorBytes - 2 * tag.Length - 5;
        if (valueBytes.Length > max)
        {
            var cut = max;
            while (cut > 0 && (valueBytes[cut] & 0xC0) == 0x80)
            {
                cut--;
            }

            valueBytes = valueBytes[..cut];
        }

        var open = Encoding.ASCII.GetBytes($"<{tag}>");
        var close = Encoding.ASCII.GetBytes($"</{tag}>");
        WritePadded([.. open, .. valueBytes, .. close], sector);
    }

    /// <summary>Copies <paramref name="data"/> and fills the rest with spaces (srmetadata.py getSector "%-512s").</summary>
    internal static void WritePadded(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (data.Length > destination.Length)
        {
            throw new ArgumentException($"{data.Length} bytes do not fit a {destination.Length}-byte area", nameof(data));
        }

        data.CopyTo(destination);
        destination[data.Length..].Fill((byte)' ');
    }

    // SM removes NULs before parsing (getMetadataInternal: replace(b'\x00', b'')).
    private static string DecodeText(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IndexOf((byte)0) < 0)
        {
            return Encoding.UTF8.GetString(bytes);
        }

        var copy = new byte[bytes.Length];
        var n = 0;
        foreach (var b in bytes)
        {
            if (b != 0)
            {
                copy[n++] = b;
            }
        }

        return Encoding.UTF8.GetString(copy, 0, n);
    }

    private static XenMgtSrInfo DecodeSrInfo(ReadOnlySpan<byte> bytes, List<Finding> findings)
    {
        var text = DecodeText(bytes);
        var start = 0;
        if (text.StartsWith(XmlDeclaration, StringComparison.Ordinal))
        {
            var end = text.IndexOf("?>", StringComparison.Ordinal);
            start = end < 0 ? text.Length : end + 2;
        }

        var elements = XenMgtXml.Extract(text[start..], out var problem, out _);
        var info = XenMgtSrInfo.FromElements(elements);
        if (problem is not null || info.UuidText is null)
        {
            findings.Add(new("XEN_MGT_SR_INFO_UNPARSABLE", Severity.Warning,
                $"MGT SR information (bytes 512-2047) is damaged: {problem ?? "no <uuid> element"}",
                XenMgtSrInfo.OffsetBytes, "sr_info"));
        }

        return info;
    }

    private static XenMgtVdiRecord? DecodeRecord(ReadOnlySpan<byte> bytes, int slot, long offset, bool within, List<Finding> findings)
    {
        // Beyond the header length only slots that still hold a record are of interest; the rest is old space.
        var text = DecodeText(bytes);
        var open = text.IndexOf(VdiOpen, StringComparison.Ordinal);
        if (open < 0)
        {
            if (within)
            {
                var blank = bytes.IndexOfAnyExcept((byte)' ', (byte)0) < 0;
                findings.Add(new("XEN_MGT_RECORD_UNPARSABLE", Severity.Warning,
                    $"MGT record slot {slot} is inside the header length but {(blank ? "blank" : "has no <vdi> element")}", offset, "vdi"));
            }

            return null;
        }

        var body = text[(open + VdiOpen.Length)..];
        var close = body.LastIndexOf(VdiClose, StringComparison.Ordinal);
        var elements = XenMgtXml.Extract(close < 0 ? body : body[..close], out var problem, out _);
        var complete = close >= 0 && problem is null;
        var record = XenMgtVdiRecord.FromElements(elements, slot, offset, within, complete);
        var severity = within ? Severity.Warning : Severity.Info;
        if (!complete)
        {
            findings.Add(new("XEN_MGT_RECORD_UNPARSABLE", severity,
                $"MGT record slot {slot} is damaged: {problem ?? "no </vdi>"}; partial values kept", offset, "vdi"));
        }
        else if (record.Uuid is null)
        {
            findings.Add(new("XEN_MGT_RECORD_NO_UUID", severity, $"MGT record slot {slot} has no valid <uuid>", offset, "uuid", record.UuidText));
        }

        if (!within)
        {
            findings.Add(new("XEN_MGT_RECORD_BEYOND_LENGTH", Severity.Info,
                $"MGT record slot {slot} ({(record.IsDeleted ? "deleted" : "not marked deleted")}, uuid {record.UuidText ?? "?"}) lies beyond the header length; hint only",
                offset, "vdi"));
        }

        return record;
    }
}
