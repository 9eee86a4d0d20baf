// SPDX-License-Identifier: MIT
using VRescue.Formats.Lvm;
using VRescue.Formats.Vhd;
using VRescue.Formats.Xen;
using VRescue.Recovery.Probe;
using VRescue.Storage;
using VRescue.Storage.Vhd;
using VRescue.Storage.Volumes;

namespace VRescue.Recovery.Sr;

/// <summary>What <see cref="SrAssembler"/> made of the sources: the probe report and the opened SRs.</summary>
public sealed record AssembledSources(ProbeReport Report, IReadOnlyList<AssembledSr> Srs);

/// <summary>One SR (VG) assembled from one metadata version, with every LV opened by its extent map.</summary>
public sealed class AssembledSr(ProbedSr probed, LvmVolumeGroup vg, VgMetadataChoice metadata, Guid? srUuid,
    IReadOnlyList<AssembledLv> lvs, IReadOnlyList<AssembledVdi> vdis, XenMgtVolume? mgt)
{
    public ProbedSr Probed { get; } = probed;

    public LvmVolumeGroup Vg { get; } = vg;

    /// <summary>Which metadata the extent maps come from (with the seqno actually used).</summary>
    public VgMetadataChoice Metadata { get; } = metadata;

    /// <summary>SR uuid from the VG name; null for a VG that is not a XenServer SR.</summary>
    public Guid? SrUuid { get; } = srUuid;

    public IReadOnlyList<AssembledLv> Lvs { get; } = lvs;

    public IReadOnlyList<AssembledVdi> Vdis { get; } = vdis;

    public XenMgtVolume? Mgt { get; } = mgt;

    /// <summary>
    /// The LV a differencing VHD's parent reference points at within this SR: footer uuid first, then locators and
    /// parent name (research brief 2.7); an all-zero uuid names a raw parent (LV-&lt;uuid&gt;). Null when absent.
    /// </summary>
    public AssembledLv? ResolveParent(VhdParentReference reference)
    {
        var byFooterUuid = Vdis.Where(v => v.Image?.Footer is not null).GroupBy(v => v.Image!.Footer!.Uuid).ToDictionary(g => g.Key, g => g.First().Lv);
        return SrAssembler.ResolveParent(reference.Uuid, reference.LocatorTexts.Prepend(reference.Name), byFooterUuid, Lvs);
    }
}

/// <summary>An LV with its extent map, ready to read.</summary>
/// <param name="Lv">The LV as the metadata describes it.</param>
/// <param name="Name">What its name says (VHD-, LV-, MGT, journal...).</param>
/// <param name="SizeBytes">Extent count x extent size.</param>
/// <param name="Source">The LV's bytes, read through the extent map (unmapped extents read zeros).</param>
/// <param name="Segments">Segments as probe reports them.</param>
/// <param name="Fragments">Number of physically discontiguous pieces.</param>
/// <param name="DiskOffset">LV offset to absolute disk offset (null where unmapped).</param>
/// <param name="DiskName">Source holding the first extent.</param>
public sealed record AssembledLv(LvmLogicalVolume Lv, XenLvName Name, long SizeBytes, ExtentMappedSource Source,
    IReadOnlyList<ProbedSegment> Segments, int Fragments, Func<long, long?> DiskOffset, string DiskName);

/// <summary>A VDI LV (VHD- or LV-) with its opened VHD, MGT record and resolved parent.</summary>
public sealed class AssembledVdi(Guid uuid, AssembledLv lv, ProbedVdi probed, VhdImage? image, XenMgtVdiRecord? record, bool hasChildren)
{
    public Guid Uuid { get; } = uuid;

    public AssembledLv Lv { get; } = lv;

    public ProbedVdi Probed { get; } = probed;

    /// <summary>The VHD opened from the LV (null for raw VDIs and unreadable headers).</summary>
    public VhdImage? Image { get; } = image;

    public XenMgtVdiRecord? Record { get; } = record;

    /// <summary>Parent VDI within the same SR and metadata version.</summary>
    public AssembledVdi? Parent { get; internal set; }

    /// <summary>Another VDI uses this one as its parent (a base copy or a snapshot's origin).</summary>
    public bool HasChildren { get; } = hasChildren;

    public bool IsVhd => Lv.Name.Kind == XenLvKind.VhdVdi;

    /// <summary>Hidden: footer hidden flag (VHD) or the "hidden" LV tag (raw).</summary>
    public bool Hidden => Probed.Hidden;

    /// <summary>Hidden and nobody's parent: deleted in XenServer but not yet garbage-collected.</summary>
    public bool IsHiddenLeaf => Hidden && !HasChildren;

    public string? NameLabel => Record?.NameLabel;

    /// <summary>Guest-visible size: VHD current size, or the LV size for raw VDIs.</summary>
    public long? VirtualSizeBytes => Probed.VirtualSizeBytes;

    public bool IsDifferencing => Image?.Footer?.DiskType == VhdDiskType.Differencing;
}
