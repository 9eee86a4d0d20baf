// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Formats.Lvm;

/// <summary>
/// VG metadata text as a model (lvm2 lib/format_text/import_vsn1.c), from on-disk text or a backup/archive
/// file. Built from an <see cref="LvmConfigSection"/> tree that is kept as <see cref="Root"/>, so nothing
/// unknown is lost; each model object also keeps its own section.
/// </summary>
public sealed class LvmMetadata
{
    /// <summary>contents value the importer requires.</summary>
    public const string ContentsValue = "Text Format Volume Group";

    private LvmMetadata(LvmConfigSection root, LvmVolumeGroup? vg, LvmMetadataTrailer trailer, IReadOnlyList<Finding> findings)
    {
        Root = root;
        VolumeGroup = vg;
        Trailer = trailer;
        Findings = findings;
    }

    /// <summary>The parsed tree (top-level values are the trailer, the first top-level section is the VG).</summary>
    public LvmConfigSection Root { get; }

    /// <summary>The VG, or null when the text has no section at top level.</summary>
    public LvmVolumeGroup? VolumeGroup { get; }

    /// <summary>contents, version, description, creation host and time.</summary>
    public LvmMetadataTrailer Trailer { get; }

    /// <summary>Syntax and consistency findings (offsets as given to <see cref="Parse"/>).</summary>
    public IReadOnlyList<Finding> Findings { get; }

    /// <summary>Parses text (up to its NUL) and builds the model; never throws on bad text.</summary>
    public static LvmMetadata Parse(ReadOnlySpan<byte> text, long baseOffsetBytes = 0)
    {
        var parsed = LvmConfigParser.Parse(text, baseOffsetBytes);
        var m = FromConfig(parsed.Root);
        return new LvmMetadata(m.Root, m.VolumeGroup, m.Trailer, [.. parsed.Findings, .. m.Findings]);
    }

    /// <summary>Builds the model from a parsed tree.</summary>
    public static LvmMetadata FromConfig(LvmConfigSection root)
    {
        var f = new List<Finding>();
        var trailer = new LvmMetadataTrailer(
            root.GetString("contents"), root.GetInt64("version"), root.GetString("description"),
            root.GetString("creation_host"), root.GetInt64("creation_time"));
        if (trailer.Contents is not null && trailer.Contents != ContentsValue || trailer.Version is not null and not 1)
        {
            f.Add(new Finding("LVM_META_TRAILER", Severity.Warning,
                $"contents '{trailer.Contents}' version {trailer.Version}: LVM's importer expects '{ContentsValue}' version 1",
                root.Find("contents")?.OffsetBytes, "contents"));
        }
        else if (trailer.Contents is null || trailer.Version is null)
        {
            f.Add(new Finding("LVM_META_TRAILER", Severity.Info,
                "no contents/version trailer (truncated text?); LVM needs it to import this text", null, "contents"));
        }

        var sections = root.Sections.ToList();
        if (sections.Count == 0)
        {
            f.Add(new Finding("LVM_META_NO_VG", Severity.Error, "the text has no VG section", null));
            return new LvmMetadata(root, null, trailer, f);
        }

        foreach (var extra in sections.Skip(1))
        {
            f.Add(new Finding("LVM_META_EXTRA_SECTION", Severity.Warning,
                $"top-level section '{extra.Name}' after the VG section '{sections[0].Name}' is ignored by LVM",
                root.Find(extra.Name)?.OffsetBytes, extra.Name));
        }

        var vg = LvmVolumeGroup.From(sections[0], root.Find(sections[0].Name)?.OffsetBytes, f);
        return new LvmMetadata(root, vg, trailer, f);
    }

    internal static long Required(LvmConfigSection s, string key, string where, long? sectionOffset, List<Finding> f)
    {
        if (s.GetInt64(key) is { } v)
        {
            return v;
        }

        var node = s.Find(key);
        f.Add(new Finding("LVM_META_FIELD", Severity.Error,
            node is null ? $"{where}: '{key}' is missing" : $"{where}: '{key}' is not a 64-bit integer ({node.Value?.ToString() ?? "a section"})",
            node?.OffsetBytes ?? sectionOffset, key));
        return 0;
    }

    internal static string RequiredString(LvmConfigSection s, string key, string where, long? sectionOffset, List<Finding> f)
    {
        if (s.GetString(key) is { } v)
        {
            return v;
        }

        f.Add(new Finding("LVM_META_FIELD", Severity.Error, $"{where}: string '{key}' is missing",
            s.Find(key)?.OffsetBytes ?? sectionOffset, key));
        return "";
    }
}

/// <summary>The top-level values that describe the text itself (export.c _print_header).</summary>
public sealed record LvmMetadataTrailer(string? Contents, long? Version, string? Description, string? CreationHost, long? CreationTimeUnix);

/// <summary>The VG section.</summary>
public sealed class LvmVolumeGroup
{
    public required LvmConfigSection Section { get; init; }
    public required string Name { get; init; }
    /// <summary>VG UUID as written (6-4-4-4-4-4-6).</summary>
    public required string Id { get; init; }
    public required long Seqno { get; init; }
    public required long ExtentSizeSectors { get; init; }
    /// <summary>extent_size × 512; 0 when that overflows.</summary>
    public required long ExtentSizeBytes { get; init; }
    public required IReadOnlyList<string> Status { get; init; }
    public required IReadOnlyList<string> Flags { get; init; }
    public required long MaxLv { get; init; }
    public required long MaxPv { get; init; }
    public required long MetadataCopies { get; init; }
    /// <summary>physical_volumes in file order, keyed pvN (renumbered on every write, so valid only within this text).</summary>
    public required IReadOnlyList<LvmPhysicalVolume> PhysicalVolumes { get; init; }
    public required IReadOnlyList<LvmLogicalVolume> LogicalVolumes { get; init; }

    /// <summary>The PV with key <paramref name="key"/> (e.g. "pv0"), or null.</summary>
    public LvmPhysicalVolume? FindPhysicalVolume(string key) => PhysicalVolumes.FirstOrDefault(p => p.Key == key);

    /// <summary>The LV named <paramref name="name"/>, or null.</summary>
    public LvmLogicalVolume? FindLogicalVolume(string name) => LogicalVolumes.FirstOrDefault(l => l.Name == name);

    internal static LvmVolumeGroup From(LvmConfigSection s, long? offset, List<Finding> f)
    {
        var where = $"VG {s.Name}";
        var extentSectors = LvmMetadata.Required(s, "extent_size", where, offset, f);
        long extentBytes = 0;
        if (extentSectors <= 0 || extentSectors > long.MaxValue / 512)
        {
            f.Add(new Finding("LVM_META_EXTENT_SIZE", Severity.Error, $"{where}: extent_size {extentSectors} sectors is not usable",
                s.Find("extent_size")?.OffsetBytes ?? offset, "extent_size", extentSectors.ToString()));
        }
        else
        {
            extentBytes = extentSectors * 512;
        }

        var pvs = new List<LvmPhysicalVolume>();
        if (s.Section("physical_volumes") is { } pvSection)
        {
            foreach (var node in pvSection.Nodes.Where(n => n.Section is not null))
            {
                pvs.Add(LvmPhysicalVolume.From(node.Section!, node.OffsetBytes, f));
            }
        }
        else
        {
            f.Add(new Finding("LVM_META_FIELD", Severity.Error, $"{where}: no physical_volumes section", offset, "physical_volumes"));
        }

        var lvs = new List<LvmLogicalVolume>();
        if (s.Section("logical_volumes") is { } lvSection)
        {
            foreach (var node in lvSection.Nodes.Where(n => n.Section is not null))
            {
                lvs.Add(LvmLogicalVolume.From(node.Section!, node.OffsetBytes, f));
            }
        }

        var vg = new LvmVolumeGroup
        {
            Section = s,
            Name = s.Name,
            Id = LvmMetadata.RequiredString(s, "id", where, offset, f),
            Seqno = LvmMetadata.Required(s, "seqno", where, offset, f),
            ExtentSizeSectors = extentSectors,
            ExtentSizeBytes = extentBytes,
            Status = s.GetStrings("status"),
            Flags = s.GetStrings("flags"),
            MaxLv = s.GetInt64("max_lv") ?? 0,
            MaxPv = s.GetInt64("max_pv") ?? 0,
            MetadataCopies = s.GetInt64("metadata_copies") ?? 0,
            PhysicalVolumes = pvs,
            LogicalVolumes = lvs,
        };
        vg.CheckExtents(f);
        return vg;
    }

    /// <summary>Stripe areas must name a PV of this VG, fit its pe_count and not share extents (metadata.c _lv_validate_references).</summary>
    private void CheckExtents(List<Finding> f)
    {
        var used = new Dictionary<string, List<(long Start, long Count, string Owner, long? At)>>();
        foreach (var lv in LogicalVolumes)
        {
            foreach (var seg in lv.Segments.Where(x => x.IsSupported && x.StripeCount > 0))
            {
                var perStripe = seg.ExtentCount / seg.StripeCount;
                foreach (var stripe in seg.Stripes)
                {
                    var owner = $"LV {lv.Name} {seg.Name}";
                    if (FindPhysicalVolume(stripe.PvKey) is not { } pv)
                    {
                        f.Add(new Finding("LVM_SEGMENT_PV_UNKNOWN", Severity.Error,
                            $"{owner} uses '{stripe.PvKey}', which is not in physical_volumes", seg.OffsetBytes, "stripes", stripe.PvKey));
                        continue;
                    }

                    var end = (Int128)stripe.PeStart + perStripe;
                    if (stripe.PeStart < 0 || perStripe < 0 || end > pv.PeCount)
                    {
                        f.Add(new Finding("LVM_SEGMENT_PE_RANGE", Severity.Error,
                            $"{owner} uses extents {stripe.PeStart}..{end - 1} of {pv.Key}, which has {pv.PeCount}",
                            seg.OffsetBytes, "stripes", $"{stripe.PeStart}+{perStripe}", $"<= {pv.PeCount}"));
                    }

                    if (!used.TryGetValue(pv.Key, out var list))
                    {
                        used[pv.Key] = list = [];
                    }

                    list.Add((stripe.PeStart, perStripe, owner, seg.OffsetBytes));
                }
            }
        }

        foreach (var (pvKey, list) in used)
        {
            list.Sort((a, b) => a.Start.CompareTo(b.Start));
            for (var i = 1; i < list.Count; i++)
            {
                if (list[i].Start < (Int128)list[i - 1].Start + list[i - 1].Count)
                {
                    f.Add(new Finding("LVM_SEGMENT_OVERLAP", Severity.Error,
                        $"{list[i].Owner} and {list[i - 1].Owner} both use extent {list[i].Start} of {pvKey}", list[i].At, "stripes"));
                }
            }
        }
    }
}

/// <summary>One pvN section of physical_volumes.</summary>
public sealed class LvmPhysicalVolume
{
    public required LvmConfigSection Section { get; init; }
    /// <summary>"pv0", "pv1", … as referenced by segment stripes in the same text.</summary>
    public required string Key { get; init; }
    /// <summary>PV UUID as written (6-4-4-4-4-4-6); matches the label's pv_uuid with dashes.</summary>
    public required string Id { get; init; }
    /// <summary>Last device path; a hint only.</summary>
    public required string? Device { get; init; }
    public required long? DevSizeSectors { get; init; }
    public required long PeStartSectors { get; init; }
    /// <summary>Byte offset of PE 0 within the PV; 0 when pe_start overflows.</summary>
    public long PeStartBytes => PeStartSectors is >= 0 and <= long.MaxValue / 512 ? PeStartSectors * 512 : 0;
    public required long PeCount { get; init; }
    public required IReadOnlyList<string> Status { get; init; }
    public required IReadOnlyList<string> Flags { get; init; }

    internal static LvmPhysicalVolume From(LvmConfigSection s, long? offset, List<Finding> f)
    {
        var where = $"PV {s.Name}";
        return new LvmPhysicalVolume
        {
            Section = s,
            Key = s.Name,
            Id = LvmMetadata.RequiredString(s, "id", where, offset, f),
            Device = s.GetString("device"),
            DevSizeSectors = s.GetInt64("dev_size"),
            PeStartSectors = LvmMetadata.Required(s, "pe_start", where, offset, f),
            PeCount = LvmMetadata.Required(s, "pe_count", where, offset, f),
            Status = s.GetStrings("status"),
            Flags = s.GetStrings("flags"),
        };
    }
}

/// <summary>One LV section of logical_volumes.</summary>
public sealed class LvmLogicalVolume
{
    public required LvmConfigSection Section { get; init; }
    public required string Name { get; init; }
    public required string Id { get; init; }
    public required IReadOnlyList<string> Status { get; init; }
    public required IReadOnlyList<string> Flags { get; init; }
    public required IReadOnlyList<string> Tags { get; init; }
    /// <summary>creation_time in unix seconds, when present.</summary>
    public required long? CreationTime { get; init; }
    public required string? CreationHost { get; init; }
    /// <summary>Segments in file order (segment1, segment2, …), unsupported types included.</summary>
    public required IReadOnlyList<LvmSegment> Segments { get; init; }

    /// <summary>Sum of the segments' extent counts (saturates instead of overflowing on hostile values).</summary>
    public long ExtentCount
    {
        get
        {
            Int128 sum = 0;
            foreach (var s in Segments)
            {
                sum += s.ExtentCount;
            }

            return (long)Int128.Clamp(sum, long.MinValue, long.MaxValue);
        }
    }

    /// <summary>False for hidden sub-LVs (_rimage, _tmeta, …), which lack VISIBLE.</summary>
    public bool IsVisible => Status.Contains("VISIBLE");

    internal static LvmLogicalVolume From(LvmConfigSection s, long? offset, List<Finding> f)
    {
        var where = $"LV {s.Name}";
        var segments = new List<LvmSegment>();
        foreach (var node in s.Nodes.Where(n => n.Section is not null))
        {
            segments.Add(LvmSegment.From(node.Section!, node.OffsetBytes, where, f));
        }

        var declared = s.GetInt64("segment_count");
        if (declared != segments.Count)
        {
            f.Add(new Finding("LVM_SEGMENT_COUNT", Severity.Warning,
                $"{where}: segment_count is {declared?.ToString() ?? "missing"} but {segments.Count} segment sections are present",
                s.Find("segment_count")?.OffsetBytes ?? offset, "segment_count", declared?.ToString(), segments.Count.ToString()));
        }

        Int128 next = 0;
        foreach (var seg in segments.OrderBy(x => x.StartExtent))
        {
            if (seg.StartExtent != next)
            {
                f.Add(new Finding("LVM_SEGMENT_GAP", Severity.Warning,
                    $"{where}: {seg.Name} starts at extent {seg.StartExtent}, expected {next} (segments must cover the LV without gaps)",
                    seg.OffsetBytes, "start_extent", seg.StartExtent.ToString(), next.ToString()));
            }

            next = (Int128)seg.StartExtent + seg.ExtentCount; // both are any 64-bit value the text holds
        }

        return new LvmLogicalVolume
        {
            Section = s,
            Name = s.Name,
            Id = LvmMetadata.RequiredString(s, "id", where, offset, f),
            Status = s.GetStrings("status"),
            Flags = s.GetStrings("flags"),
            Tags = s.GetStrings("tags"),
            CreationTime = s.GetInt64("creation_time"),
            CreationHost = s.GetString("creation_host"),
            Segments = segments,
        };
    }
}

/// <summary>A stripe area: extents starting at <paramref name="PeStart"/> on the PV keyed <paramref name="PvKey"/>.</summary>
public readonly record struct LvmStripe(string PvKey, long PeStart);

/// <summary>A segmentN section. Only "striped" (linear = 1 stripe) maps to PVs; other types are kept as found.</summary>
public sealed class LvmSegment
{
    /// <summary>The segment type VRescue maps (lib/striped/striped.c).</summary>
    public const string StripedType = "striped";

    public required LvmConfigSection Section { get; init; }
    /// <summary>Section name, e.g. "segment1".</summary>
    public required string Name { get; init; }
    public required long? OffsetBytes { get; init; }
    public required long StartExtent { get; init; }
    public required long ExtentCount { get; init; }
    /// <summary>type as written, possibly with +flag suffixes.</summary>
    public required string Type { get; init; }
    public required long StripeCount { get; init; }
    /// <summary>stripe_size in sectors (present only with more than one stripe).</summary>
    public required long? StripeSizeSectors { get; init; }
    public required IReadOnlyList<LvmStripe> Stripes { get; init; }

    /// <summary>True for striped/linear segments, which VRescue can map to PV extents.</summary>
    public bool IsSupported => Type == StripedType;

    internal static LvmSegment From(LvmConfigSection s, long? offset, string lv, List<Finding> f)
    {
        var where = $"{lv} {s.Name}";
        var type = LvmMetadata.RequiredString(s, "type", where, offset, f);
        var seg = new LvmSegment
        {
            Section = s,
            Name = s.Name,
            OffsetBytes = offset,
            StartExtent = LvmMetadata.Required(s, "start_extent", where, offset, f),
            ExtentCount = LvmMetadata.Required(s, "extent_count", where, offset, f),
            Type = type,
            StripeCount = type == StripedType ? LvmMetadata.Required(s, "stripe_count", where, offset, f) : s.GetInt64("stripe_count") ?? 0,
            StripeSizeSectors = s.GetInt64("stripe_size"),
            Stripes = ReadStripes(s.Value("stripes")),
        };

        if (!seg.IsSupported)
        {
            f.Add(new Finding("LVM_SEGMENT_UNSUPPORTED", Severity.Warning,
                $"{where}: segment type '{type}' is kept but VRescue does not map it to PV extents", offset, "type", type));
            return seg;
        }

        // ReadStripes keeps only well-formed ("pvN", pe) pairs, so a count mismatch means a malformed array.
        var pairsValid = s.Value("stripes") is { Kind: LvmConfigValueKind.Array } a && a.Items.Count == 2 * seg.Stripes.Count;
        if (!pairsValid || seg.StripeCount <= 0 || seg.Stripes.Count != seg.StripeCount || seg.ExtentCount <= 0 || seg.ExtentCount % seg.StripeCount != 0)
        {
            f.Add(new Finding("LVM_SEGMENT_STRIPES", Severity.Error,
                $"{where}: stripe_count {seg.StripeCount}, {seg.Stripes.Count} stripe areas, extent_count {seg.ExtentCount}: stripes must be [\"pvN\", pe, …] pairs, one per stripe, and divide extent_count",
                s.Find("stripes")?.OffsetBytes ?? offset, "stripes"));
        }
        else if (seg.StripeCount > 1 && seg.StripeSizeSectors is not > 0)
        {
            f.Add(new Finding("LVM_SEGMENT_STRIPES", Severity.Error, $"{where}: {seg.StripeCount} stripes without a positive stripe_size",
                s.Find("stripe_size")?.OffsetBytes ?? offset, "stripe_size"));
        }

        return seg;
    }

    private static List<LvmStripe> ReadStripes(LvmConfigValue? v)
    {
        var list = new List<LvmStripe>();
        if (v is not { Kind: LvmConfigValueKind.Array })
        {
            return list;
        }

        for (var i = 0; i + 1 < v.Items.Count; i += 2)
        {
            if (v.Items[i].Kind == LvmConfigValueKind.String && v.Items[i + 1].Integer is { } pe)
            {
                list.Add(new LvmStripe(v.Items[i].Text, pe));
            }
        }

        return list;
    }
}
