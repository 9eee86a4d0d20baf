// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Sr;
using VRescue.Storage;
using VRescue.Storage.Output;
using VRescue.Storage.Vhd;
using VRescue.Storage.Volumes;

namespace VRescue.Recovery.Vhd;

/// <summary>Block counts of a check, by how each block was found.</summary>
public sealed record VhdBlockCounts(int FromBat, int ByElimination, int Inferred, int Lost, int Orphans);

/// <summary>What <c>vrescue vhd check</c> reports (docs/json/vhd.md).</summary>
public sealed record VhdCheckReport(
    string Source,
    string? Vdi,
    VhdVerdict Verdict,
    long SourceSizeBytes,
    string? DiskType,
    long VirtualSizeBytes,
    long BlockSizeBytes,
    VhdImageSummary Stored,
    IReadOnlyList<Finding> Findings,
    IReadOnlyList<string> Repairs,
    VhdBlockCounts Blocks,
    IReadOnlyList<VhdBlockPlacement> PlacedWithoutBat,
    IReadOnlyList<VhdBadRange> BadRanges,
    long LostBytes,
    IReadOnlyList<VhdOrphanBlock> Orphans,
    IReadOnlyList<string> Chain,
    GuestReport? Guest);

/// <summary>What <c>vrescue vhd repair</c> reports: the check of the input plus what was written.</summary>
public sealed record VhdRepairReport(VhdCheckReport Check, string Out, string Format, string BadMapPath, long BytesWritten);

/// <summary>The TARGET arguments do not make a target (several files without --vdi, a --vdi that is not a uuid).</summary>
public sealed class VhdTargetUsageException(string message) : Exception(message);

/// <summary>A VHD to check or repair: a file, or a VDI's LV inside an SR assembled from one or more disk images.</summary>
public sealed class VhdTarget : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    private VhdTarget(IBlockSource source, IReadOnlyList<string> paths, string? vdi, Func<VhdParentReference, IBlockSource?>? resolveParent)
    {
        Source = source;
        Paths = paths;
        Vdi = vdi;
        ResolveParent = resolveParent;
    }

    public IBlockSource Source { get; }

    /// <summary>The first file given on the command line (the SR image for a VDI).</summary>
    public string Path => Paths[0];

    /// <summary>Every file given on the command line (the disks the SR is assembled from); none is ever written.</summary>
    public IReadOnlyList<string> Paths { get; }

    public string? Vdi { get; }

    /// <summary>For a VDI: its parents within the same SR (<see cref="AssembledSr.ResolveParent"/>); null for a file (parents are looked for beside it).</summary>
    internal Func<VhdParentReference, IBlockSource?>? ResolveParent { get; }

    /// <summary>Opens <paramref name="path"/> read-only; with <paramref name="vdiUuid"/>, the VDI's LV inside the SR on it.</summary>
    public static VhdTarget Open(string path, string? vdiUuid) => Open([path], vdiUuid);

    /// <summary>
    /// Opens <paramref name="paths"/> read-only. Without <paramref name="vdiUuid"/> exactly one VHD file; with it, the SR
    /// assembled from all of them (<see cref="SrAssembler"/>, current metadata) and the VDI's LV by its extent map.
    /// </summary>
    public static VhdTarget Open(IReadOnlyList<string> paths, string? vdiUuid)
    {
        if (paths.Count == 0)
        {
            throw new ArgumentException("no TARGET given", nameof(paths));
        }

        if (vdiUuid is null)
        {
            if (paths.Count > 1)
            {
                throw new VhdTargetUsageException($"{paths.Count} files given without --vdi: check one VHD file, or give --vdi UUID to look inside the SR on several disks");
            }

            var file = FileBlockSource.Open(paths[0]);
            var t = new VhdTarget(file, paths, null, null);
            t._owned.Add(file);
            return t;
        }

        if (!Guid.TryParse(vdiUuid, out var wanted))
        {
            throw new VhdTargetUsageException($"--vdi {vdiUuid}: not a uuid");
        }

        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var p in paths)
            {
                sources.Add(FileBlockSource.Open(p));
            }

            var assembled = SrAssembler.Assemble(sources);
            foreach (var sr in assembled.Srs)
            {
                var vdi = sr.Vdis.FirstOrDefault(v => v.Uuid == wanted);
                if (vdi is null)
                {
                    continue;
                }

                var t = new VhdTarget(vdi.Lv.Source, paths, vdi.Uuid.ToString(), r => sr.ResolveParent(r)?.Source);
                t._owned.AddRange(sources);
                return t;
            }
        }
        catch
        {
            sources.ForEach(s => s.Dispose());
            throw;
        }

        sources.ForEach(s => s.Dispose());
        throw new FileNotFoundException($"{string.Join(", ", paths)}: no VDI {vdiUuid} in the SRs found there (vrescue probe lists the VDIs)");
    }

    internal void Own(IDisposable d) => _owned.Add(d);

    public void Dispose() => _owned.ForEach(d => d.Dispose());
}

/// <summary>Check and repair of one VHD: analysis, parent chain, guest filesystem judgement, output.</summary>
public static class VhdInspection
{
    /// <summary>Analyses <paramref name="target"/> read-only and judges the guest filesystems of the repaired view.</summary>
    public static (VhdCheckReport Report, VhdRecoveryPlan Plan, IBlockSource? Guest) Check(VhdTarget target, string imageName = "<repaired image>")
    {
        var plan = VhdRecoveryAnalyzer.Analyze(target.Source);
        var findings = plan.Findings.ToList();
        var chain = new List<string> { target.Source.Name };
        IBlockSource? guest = null;
        if (plan.IsVhd)
        {
            IBlockSource? parent = null;
            if (plan.Footer!.DiskType == VhdDiskType.Differencing && plan.Header is { } header)
            {
                parent = OpenParentChain(target, plan, header, findings, chain);
            }

            if (plan.Footer.DiskType != VhdDiskType.Differencing || parent is not null)
            {
                guest = plan.OpenGuest(parent);
            }
            else
            {
                findings.Add(new Finding("VHD_CHAIN_UNRESOLVED", Severity.Warning,
                    "differencing disk: the parent chain was not resolved, so the guest filesystem is not judged"));
            }
        }

        GuestReport? guestReport = null;
        if (guest is not null && guest.LengthBytes > 0)
        {
            guestReport = GuestFilesystemJudge.Judge(guest, plan.BadRanges, imageName);
        }

        var placements = plan.Placements.Values;
        var blocks = new VhdBlockCounts(
            placements.Count(p => p.Provenance == VhdBlockProvenance.Bat),
            placements.Count(p => p.Provenance == VhdBlockProvenance.Elimination),
            placements.Count(p => p.Provenance == VhdBlockProvenance.Inferred),
            plan.BadRanges.Count(r => r.Reason.StartsWith("BAT", StringComparison.Ordinal)),
            plan.Orphans.Count);
        // Without its parent a differencing disk's guest content is not all there: data loss, not "repairable".
        var verdict = findings.Any(f => f.Code is "VHD_PARENT_NOT_FOUND" or "VHD_PARENT_UUID_MISMATCH") && plan.Verdict != VhdVerdict.NotAVhd ? VhdVerdict.DataLoss
            : plan.Verdict == VhdVerdict.Clean && findings.Any(f => f.Severity != Severity.Info) ? VhdVerdict.Repairable : plan.Verdict;
        var report = new VhdCheckReport(target.Path, target.Vdi, verdict, target.Source.LengthBytes, plan.Footer?.DiskType.ToString().ToLowerInvariant(),
            plan.VirtualSizeBytes, plan.BlockSizeBytes, plan.Stored, findings, plan.Repairs, blocks,
            placements.Where(p => p.Provenance != VhdBlockProvenance.Bat).ToList(), plan.BadRanges, plan.LostBytes, plan.Orphans, chain, guestReport);
        return (report, plan, guest);
    }

    /// <summary>Writes the repaired disk to <paramref name="outPath"/> (never the input) and its bad map beside it.</summary>
    public static VhdRepairReport Repair(VhdTarget target, string outPath, string format, string commandLine,
        IProgress<long>? progress = null, CancellationToken cancel = default)
    {
        var badMapPath = outPath + ".badmap";
        foreach (var input in target.Paths)
        {
            VhdOutputTarget.EnsureNotEvidence(input, outPath);
            VhdOutputTarget.EnsureNotEvidence(input, badMapPath);
        }

        var (report, plan, guest) = Check(target, outPath);
        if (!plan.IsVhd)
        {
            throw new CorruptDataException("VHD", "image", "VHD_NOT_FOUND", $"{target.Path}: not a VHD (no footer, header or BAT found); nothing written");
        }

        if (guest is null)
        {
            throw new UnsupportedFormatFeatureException("VHD", "differencing",
                $"{target.Path}: differencing VHD whose parent chain is not resolved (keep the parents beside it); nothing written");
        }

        VhdParentLink? link = null;
        if (format == "vhd" && plan.Footer!.DiskType == VhdDiskType.Differencing)
        {
            link = ParentLinkFor(target, plan, report);
        }

        var written = format == "raw"
            ? WriteRaw(outPath, guest, progress, cancel)
            : VhdOutputTarget.WriteAtomically(outPath, handle => XenVhdWriter.Write(handle, plan.Footer!, guest, BitmapFor(plan, guest), progress, cancel, link));
        VhdOutputTarget.WriteAtomically(badMapPath, handle =>
        {
            var text = System.Text.Encoding.UTF8.GetBytes(VhdBadMap.Format(plan.VirtualSizeBytes, plan.BadRanges, commandLine));
            RandomAccess.Write(handle, text, 0);
            return text.Length;
        });
        return new VhdRepairReport(report, Path.GetFullPath(outPath), format, Path.GetFullPath(badMapPath), written);
    }

    /// <summary>
    /// A differencing output keeps the leaf's own blocks and names the parent that was found and checked (footer uuid
    /// matched), with locators as vhd-util writes them for files (MacX <c>file://./NAME</c>, W2ku/W2ru <c>.\NAME</c>,
    /// research/xenserver-lvhd.md), so it opens when written beside that parent. Inside an SR the parent is an LV whose
    /// device-mapper name only the SR's host knows: there the honest output is the flattened raw image.
    /// </summary>
    private static VhdParentLink ParentLinkFor(VhdTarget target, VhdRecoveryPlan plan, VhdCheckReport report)
    {
        if (target.Vdi is not null)
        {
            throw new UnsupportedFormatFeatureException("VHD", "differencing-output",
                $"{target.Path} --vdi {target.Vdi}: a differencing VHD output would name its parent LV by a device-mapper path that exists only on the SR's host; use --format raw (parents merged in)");
        }

        var name = Path.GetFileName(report.Chain[1]);
        return new VhdParentLink(plan.Header!.ParentUuid, plan.Header.ParentTimestampSeconds, name,
            [(VhdParentLocator.CodeMacX, "file://./" + name), (VhdParentLocator.CodeW2ku, ".\\" + name), (VhdParentLocator.CodeW2ru, ".\\" + name)]);
    }

    /// <summary>The guest view as a sparse raw image through the shared export writer (temporary name, renamed on commit).</summary>
    private static long WriteRaw(string outPath, IBlockSource guest, IProgress<long>? progress, CancellationToken cancel)
    {
        using var writer = SparseRawWriter.Create(outPath, guest.LengthBytes);
        var buffer = new byte[4 << 20];
        for (long off = 0; off < guest.LengthBytes; off += buffer.Length)
        {
            cancel.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, guest.LengthBytes - off);
            guest.ReadExactlyAt(off, buffer.AsSpan(0, n));
            writer.Write(off, buffer.AsSpan(0, n));
            progress?.Report(off + n);
        }

        writer.Commit();
        return guest.LengthBytes;
    }

    private static Func<long, byte[]?> BitmapFor(VhdRecoveryPlan plan, IBlockSource guest)
    {
        if (plan.Footer!.DiskType == VhdDiskType.Fixed || guest is not VhdRecoveredSource recovered)
        {
            // Fixed disks: allocate every block that holds non-zero data.
            var data = new byte[VhdDynamicHeader.DefaultBlockSizeBytes];
            return block =>
            {
                var from = block * data.Length;
                var n = (int)Math.Min(data.Length, guest.LengthBytes - from);
                guest.ReadExactlyAt(from, data.AsSpan(0, n));
                return data.AsSpan(0, n).ContainsAnyExcept((byte)0) ? Full() : null;
            };
        }

        return block => plan.Placements.ContainsKey(block) ? recovered.ReadBitmap(block) : null;
    }

    private static byte[] Full()
    {
        var b = new byte[512];
        b.AsSpan().Fill(0xFF);
        return b;
    }

    private static IBlockSource? OpenParentChain(VhdTarget target, VhdRecoveryPlan plan, VhdDynamicHeader header, List<Finding> findings, List<string> chain)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(target.Path))!;
        IBlockSource? Beside(VhdParentReference r)
        {
            foreach (var name in r.LocatorTexts.Append(r.Name ?? ""))
            {
                var file = name.Replace("file://", "", StringComparison.Ordinal).Replace('\\', '/').TrimStart('.', '/');
                if (file.Length == 0 || file.Contains('/'))
                {
                    continue;
                }

                var candidate = Path.Combine(dir, file);
                if (File.Exists(candidate))
                {
                    var source = FileBlockSource.Open(candidate);
                    target.Own(source);
                    return source;
                }
            }

            return null;
        }

        var Resolve = target.ResolveParent ?? Beside;
        var leafRef = new VhdParentReference(header.ParentUuid, header.ParentUnicodeName, plan.Stored.ParentLocators.Select(l => l[(l.IndexOf(": ", StringComparison.Ordinal) + 2)..]).ToList());
        var first = Resolve(leafRef);
        if (first is null)
        {
            findings.Add(new Finding("VHD_PARENT_NOT_FOUND", Severity.Error,
                $"parent {header.ParentUuid} (\"{header.ParentUnicodeName}\") not found {(target.Vdi is null ? $"beside {target.Path}" : "in the SR")}", (long)plan.Footer!.DataOffsetBytes + VhdDynamicHeaderLayout.ParentUuid));
            return null;
        }

        var parentChain = VhdChain.OpenWithReferences(first, Resolve);
        findings.AddRange(parentChain.Findings.Where(f => f.Severity != Severity.Info));
        chain.AddRange(parentChain.Images.Select(i => i.Source.Name));
        if (parentChain.Images.Count > 0 && parentChain.Images[0].Footer!.Uuid != header.ParentUuid)
        {
            findings.Add(new Finding("VHD_PARENT_UUID_MISMATCH", Severity.Error,
                $"the parent found ({parentChain.Images[0].Source.Name}) has footer uuid {parentChain.Images[0].Footer!.Uuid}, the header names {header.ParentUuid}",
                (long)plan.Footer!.DataOffsetBytes + VhdDynamicHeaderLayout.ParentUuid, "prt_uuid", header.ParentUuid.ToString(), parentChain.Images[0].Footer!.Uuid.ToString()));
            return null;
        }

        return parentChain.Content;
    }
}
