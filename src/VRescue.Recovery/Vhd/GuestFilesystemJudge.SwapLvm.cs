// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;
using VRescue.Formats.Swap;
using VRescue.Storage;
using VRescue.Storage.Lvm;

namespace VRescue.Recovery.Vhd;

/// <summary>Swap areas and LVM physical volumes inside the guest (a VM's own LVM, e.g. a distribution's default install).</summary>
public static partial class GuestFilesystemJudge
{
    /// <summary>Guest LVs judged per PV; more are listed in the PV's bad areas as not judged.</summary>
    private const int MaxGuestLvs = 64;

    /// <summary>A PV inside an LV of a guest PV is judged; one level deeper is only identified.</summary>
    private const int MaxLvmDepth = 2;

    private static GuestVolume JudgeSwap(IBlockSource volume, int? partition, long start, LinuxSwapHeader header, List<VhdBadRange> bad, List<string> lostNote)
    {
        var findings = header.Validate(volume.LengthBytes).Select(f => f.Rebase(start)).ToList();
        var health = Health(findings, bad.Count);
        var recreate = $"mkswap -U {header.Uuid}{(header.Label.Length > 0 ? $" -L '{header.Label}'" : "")}";
        var next = health == "healthy"
            ? "nothing to check: swap holds no files"
            : $"swap holds no files: recreate it on the restored volume with {recreate} so fstab's UUID=/LABEL= still match";
        return new GuestVolume(partition, start, volume.LengthBytes, "swap", header.Label, header.Uuid.ToString(), health, findings, lostNote, next);
    }

    /// <summary>
    /// A guest PV: its label, metadata areas and VG text read like `pvck` (LvmPhysicalVolumeReader), then every LV
    /// that lies in one run of extents on this PV judged as a volume of its own (filesystem, swap). LVs spread over
    /// several runs or PVs are named but not judged.
    /// </summary>
    private static IEnumerable<GuestVolume> JudgeLvmPv(IBlockSource volume, int? partition, long start, IReadOnlyList<VhdBadRange> bad,
        OpenedVolume opened, string image, int depth)
    {
        var report = LvmPhysicalVolumeReader.Read(volume);
        var findings = report.Findings.Select(f => f.Rebase(start)).ToList();
        var vg = report.Metadata?.VolumeGroup;
        if (vg is null)
        {
            findings.Add(new Finding("GUEST_LVM_NO_METADATA", Severity.Error,
                "guest LVM PV without readable VG metadata: its LVs cannot be located (vrescue lvm history on the exported image finds older copies)", start));
        }

        var notes = new List<string>(opened.LostNote);
        var nested = new List<GuestVolume>();
        var pv = vg?.PhysicalVolumes.FirstOrDefault(p => string.Equals(p.Id.Replace("-", "", StringComparison.Ordinal),
            report.PvUuid?.Replace("-", "", StringComparison.Ordinal), StringComparison.Ordinal));
        if (vg is not null && pv is not null)
        {
            foreach (var lv in vg.LogicalVolumes.Take(MaxGuestLvs))
            {
                var container = $"lvm2 VG {vg.Name} LV {lv.Name}";
                if (lv.Segments.Count == 0 || lv.Segments.Any(s => s.Type != LvmSegment.StripedType || s.Stripes.Count != 1 || s.Stripes[0].PvKey != pv.Key)
                    || !Contiguous(lv.Segments))
                {
                    notes.Add($"{container}: {lv.Segments.Count} segment(s) not in one run on this PV; not judged (vgcfgrestore and activate a copy to check it)");
                    continue;
                }

                var first = lv.Segments.OrderBy(s => s.StartExtent).First();
                var offset = checked(pv.PeStartBytes + (first.Stripes[0].PeStart * vg.ExtentSizeBytes));
                var length = checked(lv.ExtentCount * vg.ExtentSizeBytes);
                if (offset + length > volume.LengthBytes)
                {
                    findings.Add(new Finding("GUEST_LVM_LV_BEYOND_PV", Severity.Error, $"{container} ends at byte {offset + length} of the PV, which has {volume.LengthBytes}", start + offset));
                    continue;
                }

                nested.AddRange(JudgeVolumes(volume.Slice(offset, length), partition, start + offset, bad, image, depth + 1)
                    .Select(v => v with { Container = v.Container ?? container }));
            }

            if (vg.LogicalVolumes.Count > MaxGuestLvs)
            {
                notes.Add($"{vg.LogicalVolumes.Count - MaxGuestLvs} more LV(s) not judged");
            }
        }

        var next = $"pvck --dump headers {opened.OpenVolume}; vgcfgrestore --file of the VG text on a copy, activate it and check each LV";
        yield return new GuestVolume(partition, start, volume.LengthBytes, "lvm2-pv", vg?.Name, report.PvUuid, Health(findings, opened.LocalBad.Count), findings, notes, next);
        foreach (var v in nested)
        {
            yield return v;
        }
    }

    private static bool Contiguous(IReadOnlyList<LvmSegment> segments)
    {
        var ordered = segments.OrderBy(s => s.StartExtent).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            var (a, b) = (ordered[i - 1], ordered[i]);
            if (a.StartExtent + a.ExtentCount != b.StartExtent || a.Stripes[0].PeStart + a.ExtentCount != b.Stripes[0].PeStart)
            {
                return false;
            }
        }

        return true;
    }

    private static string Health(IReadOnlyCollection<Finding> findings, int badRanges) =>
        findings.Any(f => f.Severity == Severity.Error) ? "damaged"
        : badRanges > 0 ? "lost-ranges"
        : findings.Any(f => f.Severity == Severity.Warning) ? "warnings" : "healthy";
}
