// SPDX-License-Identifier: MIT
using System.Text;

namespace VRescue.Formats.Xen;

/// <summary>
/// SR information, sectors 1-3 of the MGT volume (srmetadata.py LVMMetadataHandler.getSRInfoForSectors):
/// sector 1 <c>&lt;?xml version="1.0" ?&gt;&lt;uuid&gt;…&lt;/uuid&gt;&lt;allocation&gt;…&lt;/allocation&gt;</c>,
/// sector 2 <c>&lt;name_label&gt;</c>, sector 3 <c>&lt;name_description&gt;</c>. Values are as stored (unescaped, trimmed).
/// </summary>
public sealed record XenMgtSrInfo
{
    public const int OffsetBytes = 512;
    public const int SizeBytes = 1536;

    /// <summary>The SR uuid text as stored; see <see cref="Uuid"/>.</summary>
    public string? UuidText { get; init; }

    /// <summary>"thick" or "thin" (LVHD allocation).</summary>
    public string? Allocation { get; init; }

    public string? NameLabel { get; init; }
    public string? NameDescription { get; init; }

    /// <summary>Elements this decoder does not know, kept as stored.</summary>
    public IReadOnlyDictionary<string, string> UnknownElements { get; init; } = new Dictionary<string, string>();

    public Guid? Uuid => XenLvName.TryUuid(UuidText ?? "", out var u) ? u : null;

    internal static XenMgtSrInfo FromElements(List<KeyValuePair<string, string>> elements)
    {
        string? uuid = null, allocation = null, label = null, description = null;
        var unknown = new Dictionary<string, string>();
        foreach (var (name, value) in elements)
        {
            switch (name)
            {
                case "uuid": uuid = value; break;
                case "allocation": allocation = value; break;
                case "name_label": label = value; break;
                case "name_description": description = value; break;
                default: unknown[name] = value; break;
            }
        }

        return new XenMgtSrInfo { UuidText = uuid, Allocation = allocation, NameLabel = label, NameDescription = description, UnknownElements = unknown };
    }
}

/// <summary>
/// One VDI record: two 512-byte sectors at 2048 + 1024 x <see cref="SlotIndex"/> (srmetadata.py
/// LVMMetadataHandler.getVdiInfo). Text fields keep what is stored (null when the element is absent); the typed
/// properties interpret them. <see cref="WithinHeaderLength"/> false means the slot lies beyond the header length:
/// a deleted or stale record, useful as a hint only.
/// </summary>
public sealed record XenMgtVdiRecord
{
    public int SlotIndex { get; init; }

    /// <summary>Offset of the record within the MGT volume.</summary>
    public long OffsetBytes { get; init; }

    public bool WithinHeaderLength { get; init; } = true;

    /// <summary>Both <c>&lt;vdi&gt;</c> and <c>&lt;/vdi&gt;</c> present and every element terminated.</summary>
    public bool Complete { get; init; } = true;

    public string? NameLabel { get; init; }
    public string? NameDescription { get; init; }
    public string? UuidText { get; init; }
    public string? IsASnapshotText { get; init; }
    public string? SnapshotOfText { get; init; }

    /// <summary>XML-RPC datetime text as XAPI gave it (e.g. 20240102T03:04:05Z), may be empty.</summary>
    public string? SnapshotTime { get; init; }

    /// <summary>user, system, suspend, crashdump, metadata, ha_statefile, redo_log, ...</summary>
    public string? Type { get; init; }

    /// <summary>"vhd" or "aio" (raw).</summary>
    public string? VdiType { get; init; }

    public string? ReadOnlyText { get; init; }
    public string? ManagedText { get; init; }
    public string? MetadataOfPool { get; init; }
    public string? DeletedText { get; init; }

    /// <summary>Elements this decoder does not know (e.g. "offset", which SM leaks into rewritten records), as stored.</summary>
    public IReadOnlyDictionary<string, string> UnknownElements { get; init; } = new Dictionary<string, string>();

    public Guid? Uuid => XenLvName.TryUuid(UuidText ?? "", out var u) ? u : null;
    public Guid? SnapshotOf => XenLvName.TryUuid(SnapshotOfText ?? "", out var u) ? u : null;
    public bool? IsASnapshot => Flag(IsASnapshotText);
    public bool? ReadOnly => Flag(ReadOnlyText);
    public bool? Managed => Flag(ManagedText);
    public bool IsDeleted => Flag(DeletedText) == true;

    // srmetadata.py MAX_VDI_NAME_LABEL_DESC_LENGTH = 512 - 2*10 - 2*16 - 3 - 12 = 445; each cut to half when over.
    internal const int MaxLabelPlusDescriptionBytes = 445;
    internal const int LabelOrDescriptionLimitBytes = MaxLabelPlusDescriptionBytes / 2;

    internal static XenMgtVdiRecord FromElements(List<KeyValuePair<string, string>> elements, int slot, long offset, bool within, bool complete)
    {
        var r = new XenMgtVdiRecord { SlotIndex = slot, OffsetBytes = offset, WithinHeaderLength = within, Complete = complete };
        var unknown = new Dictionary<string, string>();
        foreach (var (name, value) in elements)
        {
            r = name switch
            {
                "name_label" => r with { NameLabel = value },
                "name_description" => r with { NameDescription = value },
                "uuid" => r with { UuidText = value },
                "is_a_snapshot" => r with { IsASnapshotText = value },
                "snapshot_of" => r with { SnapshotOfText = value },
                "snapshot_time" => r with { SnapshotTime = value },
                "type" => r with { Type = value },
                "vdi_type" => r with { VdiType = value },
                "read_only" => r with { ReadOnlyText = value },
                "managed" => r with { ManagedText = value },
                "metadata_of_pool" => r with { MetadataOfPool = value },
                "deleted" => r with { DeletedText = value },
                _ => r,
            };
            if (!IsKnown(name))
            {
                unknown[name] = value;
            }
        }

        return r with { UnknownElements = unknown };
    }

    /// <summary>
    /// Writes the two sectors as SM 3.x does for a record built by LVHDSR (element order uuid, is_a_snapshot,
    /// snapshot_of, snapshot_time, type, vdi_type, read_only, managed, metadata_of_pool, deleted, then unknown
    /// elements). Name and description are escaped and cut like getVdiInfo; other values are escaped too (SM writes
    /// them raw, which only differs for values containing &amp;, &lt; or &gt;).
    /// </summary>
    public void Encode(Span<byte> destination)
    {
        var label = XenMgtXml.Escape(NameLabel ?? "");
        var description = XenMgtXml.Escape(NameDescription ?? "");
        if (Encoding.UTF8.GetByteCount(label) + Encoding.UTF8.GetByteCount(description) > MaxLabelPlusDescriptionBytes)
        {
            label = label[..XenMgtXml.Utf8PrefixChars(label, LabelOrDescriptionLimitBytes)];
            description = description[..XenMgtXml.Utf8PrefixChars(description, LabelOrDescriptionLimitBytes)];
        }

        var sectorA = $"<vdi><name_label>{label}</name_label><name_description>{description}</name_description>";
        var sectorB = new StringBuilder();
        Append(sectorB, "uuid", UuidText);
        Append(sectorB, "is_a_snapshot", IsASnapshotText);
        Append(sectorB, "snapshot_of", SnapshotOfText);
        Append(sectorB, "snapshot_time", SnapshotTime);
        Append(sectorB, "type", Type);
        Append(sectorB, "vdi_type", VdiType);
        Append(sectorB, "read_only", ReadOnlyText);
        Append(sectorB, "managed", ManagedText);
        Append(sectorB, "metadata_of_pool", MetadataOfPool);
        Append(sectorB, "deleted", DeletedText ?? "0");
        foreach (var (name, value) in UnknownElements)
        {
            Append(sectorB, name, value);
        }

        sectorB.Append("</vdi>");
        var b = Encoding.UTF8.GetBytes(sectorB.ToString());
        if (b.Length > XenMgtVolume.SectorBytes)
        {
            throw new ArgumentException($"VDI record second sector would be {b.Length} bytes; SM would spill into the next slot", nameof(UnknownElements));
        }

        XenMgtVolume.WritePadded(Encoding.UTF8.GetBytes(sectorA), destination[..XenMgtVolume.SectorBytes]);
        XenMgtVolume.WritePadded(b, destination.Slice(XenMgtVolume.SectorBytes, XenMgtVolume.SectorBytes));
    }

    private static void Append(StringBuilder sb, string name, string? value)
    {
        if (value is not null)
        {
            sb.Append('<').Append(name).Append('>').Append(XenMgtXml.Escape(value)).Append("</").Append(name).Append('>');
        }
    }

    private static bool IsKnown(string name) => name is "name_label" or "name_description" or "uuid" or "is_a_snapshot"
        or "snapshot_of" or "snapshot_time" or "type" or "vdi_type" or "read_only" or "managed" or "metadata_of_pool" or "deleted";

    private static bool? Flag(string? text) => text switch
    {
        "0" or "False" or "false" => false,
        "1" or "True" or "true" => true,
        _ => null,
    };
}
