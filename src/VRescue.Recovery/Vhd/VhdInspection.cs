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
    IReadOnlyList<VhdCheckFinding> Findings,
    IReadOnlyList<string> Repairs,
    VhdBlockCounts Blocks,
    IReadOnlyList<VhdBlockPlacement> PlacedWithoutBat,
    IReadOnlyList<VhdBadRange> BadRanges,
    long LostBytes,
    IReadOnlyList<VhdOrphanBlock> Orphans,
    IReadOnlyList<string> Chain,
    GuestReport? Guest,
    VhdMissingParent? MissingParent = null);

/// <summary>
/// The parent a differencing disk needs but that was not found (or was not the one its header names): its identity as
/// the leaf's header and locators give it. Every guest range that would come from it is a bad range of the report.
/// </summary>
/// <param name="Uuid">Header prt_uuid (the parent's footer uuid); empty when the header was lost.</param>
/// <param name="Name">Header parent unicode name.</param>
/// <param name="Locators">Locator texts, "CODE: text".</param>
/// <param name="Reason">not-found, uuid-mismatch (a file of that name is another VHD), header-lost, or chain-broken (a grandparent is missing).</param>
/// <param name="MissingBytes">Guest bytes that would come from it (zeros in the output, listed in the bad map).</param>
public sealed record VhdMissingParent(Guid Uuid, string? Name, IReadOnlyList<string> Locators, string Reason, long MissingBytes);

/// <summary>What <c>vrescue vhd repair</c> reports: the check of the input plus what was written.</summary>
/// <param name="Check">The check of the input.</param>
/// <param name="Out">Absolute path of the output.</param>
/// <param name="Format">vhd or raw.</param>
/// <param name="BadMapPath">Absolute path of the ddrescue mapfile.</param>
/// <param name="BytesWritten">Size of the output.</param>
/// <param name="Partial">True when the output lacks content (bad ranges, a missing parent, unplaced orphan blocks).</param>
/// <param name="Notes">What the bad map's comments say beyond the lost ranges (missing parent, orphan blocks).</param>
public sealed record VhdRepairReport(VhdCheckReport Check, string Out, string Format, string BadMapPath, long BytesWritten,
    bool Partial = false, IReadOnlyList<string>? Notes = null);

/// <summary>The TARGET arguments do not make a target (several files without --vdi, a --vdi that is not a uuid).</summary>
public sealed class VhdTargetUsageException(string message) : Exception(message);

/// <summary>A VHD to check or repair: a file, or a VDI's LV inside an SR assembled from one or more disk images.</summary>
public sealed class VhdTarget : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    private VhdTarget(IBlockSource source, IReadOnlyList<string> paths, string? vdi, Func<VhdParentReference, IBlockSource?>? resolveParent,
        VhdSrLocator? locator = null)
    {
        Source = source;
        Paths = paths;
        Vdi = vdi;
        ResolveParent = resolveParent;
        Locator = locator;
    }

    public IBlockSource Source { get; }

    /// <summary>The first file given on the command line (the SR image for a VDI).</summary>
    public string Path => Paths[0];

    /// <summary>Every file given on the command line (the disks the SR is assembled from); none is ever written.</summary>
    public IReadOnlyList<string> Paths { get; }

    public string? Vdi { get; }

    /// <summary>For a VDI: its parents within the same SR (<see cref="AssembledSr.ResolveParent"/>); null for a file (parents are looked for beside it).</summary>
    internal Func<VhdParentReference, IBlockSource?>? ResolveParent { get; }

    /// <summary>For a VDI: places LV offsets on the SR's disks; null for a file.</summary>
    internal VhdSrLocator? Locator { get; }

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

                var t = new VhdTarget(vdi.Lv.Source, paths, vdi.Uuid.ToString(), r => sr.ResolveParent(r)?.Source, new VhdSrLocator(sr, vdi.Lv));
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

    /// <summary>
    /// A VDI's LV, read through <paramref name="lv"/>, in an SR already assembled (recover's metadata choice); parents
    /// resolved within that SR.
    /// </summary>
    internal static VhdTarget ForVdi(AssembledSr sr, AssembledVdi vdi, IBlockSource lv) =>
        new(lv, [lv.Name], vdi.Uuid.ToString(), r => sr.ResolveParent(r)?.Source, new VhdSrLocator(sr, vdi.Lv));

    /// <summary>An LV view (a carved VDI) whose parents <paramref name="resolveParent"/> finds.</summary>
    internal static VhdTarget ForLv(IBlockSource lv, string vdi, Func<VhdParentReference, IBlockSource?> resolveParent) =>
        new(lv, [lv.Name], vdi, resolveParent);

    internal void Own(IDisposable d) => _owned.Add(d);

    public void Dispose() => _owned.ForEach(d => d.Dispose());
}

/// <summary>Check and repair of one VHD: analysis, parent chain, guest filesystem judgement, output.</summary>
public static class VhdInspection
{
    /// <summary>
    /// Analyses <paramref name="target"/> read-only and judges the guest filesystems of the repaired view (not with
    /// <paramref name="judgeGuest"/> false: an export only needs the view).
    /// </summary>
    /// <remarks>
    /// A differencing disk whose parent is not found (or is not the one its header names) still gets a guest view: its
    /// own sectors, with every range that would come from the parent listed as bad (zeros) and the parent named in
    /// <see cref="VhdCheckReport.MissingParent"/>, so repair writes the partial result. The guest filesystem is not judged then.
    /// </remarks>
    public static (VhdCheckReport Report, VhdRecoveryPlan Plan, IBlockSource? Guest) Check(VhdTarget target, string imageName = "<repaired image>",
        bool judgeGuest = true)
    {
        var plan = VhdRecoveryAnalyzer.Analyze(target.Source);
        var findings = plan.Findings.ToList();
        var chain = new List<string> { target.Source.Name };
        var badRanges = plan.BadRanges;
        IBlockSource? guest = null;
        VhdMissingParent? missing = null;
        if (plan.IsVhd)
        {
            IBlockSource? parent = null;
            var reason = "header-lost";
            if (plan.Footer!.DiskType == VhdDiskType.Differencing && plan.Header is { } header)
            {
                parent = OpenParentChain(target, plan, header, findings, chain, out reason);
            }

            guest = plan.OpenGuest(parent);
            if (plan.Footer.DiskType == VhdDiskType.Differencing && parent is null)
            {
                missing = MissingParent(plan, findings.Any(f => f.Code == "VHD_PARENT_LOST") ? "header-lost" : reason, out var fromParent);
                badRanges = VhdRecoveryAnalyzer.Merge([.. plan.BadRanges, .. fromParent]);
                missing = missing with { MissingBytes = fromParent.Sum(r => r.LengthBytes) };
                findings.Add(new Finding("VHD_CHAIN_UNRESOLVED", Severity.Warning,
                    $"differencing disk: the parent chain was not resolved; only this disk's own sectors are recovered ({missing.MissingBytes} guest bytes would come from the parent) and the guest filesystem is not judged"));
            }
        }

        GuestReport? guestReport = null;
        if (judgeGuest && guest is not null && guest.LengthBytes > 0 && missing is null)
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
        var verdict = (missing is not null || findings.Any(f => f.Code is "VHD_PARENT_NOT_FOUND" or "VHD_PARENT_UUID_MISMATCH")) && plan.Verdict != VhdVerdict.NotAVhd ? VhdVerdict.DataLoss
            : plan.Verdict == VhdVerdict.Clean && findings.Any(f => f.Severity != Severity.Info) ? VhdVerdict.Repairable : plan.Verdict;
        var located = findings.Select(f => target.Locator?.Locate(f) ?? VhdCheckFinding.InFile(f)).ToList();
        var report = new VhdCheckReport(target.Path, target.Vdi, verdict, target.Source.LengthBytes, plan.Footer?.DiskType.ToString().ToLowerInvariant(),
            plan.VirtualSizeBytes, plan.BlockSizeBytes, plan.Stored, located, plan.Repairs, blocks,
            placements.Where(p => p.Provenance != VhdBlockProvenance.Bat).ToList(), badRanges, badRanges.Sum(r => r.LengthBytes), plan.Orphans, chain, guestReport, missing);
        return (report, plan, guest);
    }

    /// <summary>
    /// Who the missing parent is (leaf header prt_uuid and parent name, locator texts) and which guest ranges would come
    /// from it: every block without a placement that is not already lost, and in placed blocks every sector whose bitmap
    /// bit is clear (VHD spec, "Block bitmap": a clear bit means the sector is read from the parent).
    /// </summary>
    private static VhdMissingParent MissingParent(VhdRecoveryPlan plan, string reason, out List<VhdBadRange> fromParent)
    {
        var header = plan.Header;
        var uuid = header?.ParentUuid ?? Guid.Empty;
        var name = string.IsNullOrEmpty(header?.ParentUnicodeName) ? plan.Stored.ParentName : header.ParentUnicodeName;
        var why = reason switch
        {
            "uuid-mismatch" => $"from the parent {uuid} (\"{name}\"), not the VHD found under that name",
            "chain-broken" => $"from the parent chain of {uuid} (\"{name}\"), which is broken further up",
            "header-lost" => "from the parent (unknown: the dynamic header naming it is lost)",
            _ => $"from the missing parent {uuid} (\"{name}\")",
        };
        fromParent = [];
        var size = plan.VirtualSizeBytes;
        if (header is not null && plan.BlockSizeBytes > 0)
        {
            var recovered = (VhdRecoveredSource)plan.OpenGuest();
            var sectorsPerBlock = plan.BlockSizeBytes / 512;
            for (long block = 0; block * plan.BlockSizeBytes < size; block++)
            {
                var from = block * plan.BlockSizeBytes;
                var blockEnd = Math.Min(size, from + plan.BlockSizeBytes);
                if (!plan.Placements.ContainsKey(block))
                {
                    if (!plan.BadRanges.Any(r => r.OffsetBytes < blockEnd && from < r.EndBytes))
                    {
                        fromParent.Add(new VhdBadRange(from, blockEnd - from, why));
                    }

                    continue;
                }

                var bitmap = recovered.ReadBitmap(block);
                for (long sector = 0; sector < sectorsPerBlock && from + sector * 512 < blockEnd;)
                {
                    var runEnd = Math.Min(sectorsPerBlock, VhdBitmap.RunEnd(bitmap, sector, sectorsPerBlock));
                    if (!VhdBitmap.IsSet(bitmap, sector))
                    {
                        var at = from + sector * 512;
                        fromParent.Add(new VhdBadRange(at, Math.Min(blockEnd, from + runEnd * 512) - at, why));
                    }

                    sector = runEnd;
                }
            }
        }
        else if (!plan.BadRanges.Any() && size > 0)
        {
            fromParent.Add(new VhdBadRange(0, size, why));
        }

        fromParent = VhdRecoveryAnalyzer.Merge(fromParent);
        return new VhdMissingParent(uuid, name, plan.Stored.ParentLocators, reason, 0);
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
            throw new UnsupportedFormatFeatureException("VHD", "differencing", $"{target.Path}: no guest view could be built; nothing written");
        }

        VhdParentLink? link = null;
        if (format == "vhd" && plan.Footer!.DiskType == VhdDiskType.Differencing)
        {
            link = ParentLinkFor(target, plan, report);
        }

        var written = format == "raw"
            ? WriteRaw(outPath, guest, progress, cancel)
            : VhdOutputTarget.WriteAtomically(outPath, handle => XenVhdWriter.Write(handle, plan.Footer!, guest, BitmapFor(plan, guest), progress, cancel, link));
        var notes = Notes(target, report, format);
        VhdOutputTarget.WriteAtomically(badMapPath, handle =>
        {
            var text = System.Text.Encoding.UTF8.GetBytes(VhdBadMap.Format(plan.VirtualSizeBytes, report.BadRanges, commandLine, notes));
            RandomAccess.Write(handle, text, 0);
            return text.Length;
        });
        var partial = report.BadRanges.Count > 0 || report.Orphans.Count > 0 || report.MissingParent is not null;
        return new VhdRepairReport(report, Path.GetFullPath(outPath), format, Path.GetFullPath(badMapPath), written, partial, notes);
    }

    /// <summary>What the bad map says beyond its lost ranges: the missing parent and how to complete the output, orphan blocks and where their data still is.</summary>
    private static List<string> Notes(VhdTarget target, VhdCheckReport report, string format)
    {
        var notes = new List<string>();
        if (report.MissingParent is { } m)
        {
            var who = m.Reason == "header-lost" ? "the parent"
                : $"parent {m.Uuid} \"{m.Name}\"{(m.Locators.Count > 0 ? $" (locators {string.Join(", ", m.Locators)})" : "")}";
            var ancestor = report.Findings.FirstOrDefault(f => f.Code is "VHD_PARENT_NOT_FOUND" or "VHD_PARENT_UUID_MISMATCH" or "VHD_CHAIN_CYCLE" or "VHD_CHAIN_TOO_DEEP");
            var what = m.Reason switch
            {
                "uuid-mismatch" => "is not the VHD found under that name (footer uuid differs)",
                "chain-broken" => $"was found but its own parent chain is broken ({ancestor?.Message ?? "see findings"})",
                "header-lost" => "is unknown: the dynamic header naming it is lost",
                _ => report.Vdi is null ? $"is missing (not beside {target.Path})" : "is missing from the SR",
            };
            var complete = m.Reason == "header-lost" ? "find the parent by other means (the SR's metadata, vhd-util scan) and relink this disk"
                : m.Reason == "chain-broken" ? (format == "vhd"
                    ? $"this differencing VHD names {m.Name}, so it reads as the whole disk once {m.Name} and its whole chain are beside it"
                    : $"put the missing ancestor beside {m.Name} and run vhd repair again")
                : format == "vhd" ? $"this differencing VHD names it, so it reads as the whole disk once {m.Name} is put beside it"
                : $"put {m.Name} beside {target.Path} {(report.Vdi is null ? "" : "(or in the SR) ")}and run vhd repair again";
            notes.Add($"partial: {who} {what}; the {m.MissingBytes} guest bytes that come from it are zeros in the output and listed as lost; the output becomes complete once the parent is supplied: {complete}");
        }

        foreach (var o in report.Orphans)
        {
            var where = report.Vdi is null
                ? $"file offset 0x{o.BitmapOffsetBytes:X} (bitmap), data 0x{o.DataOffsetBytes:X} +0x{o.DataSizeBytes:X}"
                : $"LV offset 0x{o.BitmapOffsetBytes:X} (bitmap), data LV 0x{o.DataOffsetBytes:X} +0x{o.DataSizeBytes:X}";
            var keep = report.Vdi is null ? $"; it is still in the source: dd if={target.Path} bs=512 skip={o.DataOffsetBytes / 512} count={o.DataSizeBytes / 512}" : "; it is still in the source";
            notes.Add($"orphan block at {where}, {o.SectorsPresent} sectors present: no BAT entry references it and its guest position is unknown, so it is not in the output{keep}");
        }

        return notes;
    }

    /// <summary>
    /// A differencing output keeps the leaf's own blocks and names the parent that was found and checked (footer uuid
    /// matched), or, when it is missing, the parent the leaf's header names (prt_uuid, parent time stamp and name), with
    /// locators as vhd-util writes them for files (MacX <c>file://./NAME</c>, W2ku/W2ru <c>.\NAME</c>,
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

        // No header at all when it is lost and no BAT was found by structure (VHD_BAT_NOT_FOUND, e.g. a file cut inside it).
        var header = plan.Header;
        var name = report.Chain.Count > 1 ? Path.GetFileName(report.Chain[1])
            : !string.IsNullOrEmpty(header?.ParentUnicodeName) ? Path.GetFileName(header.ParentUnicodeName.Replace('\\', '/'))
            : null;
        if (header is null || header.ParentUuid == Guid.Empty || string.IsNullOrEmpty(name))
        {
            throw new UnsupportedFormatFeatureException("VHD", "differencing-output",
                $"{target.Path}: the parent's identity is lost with the dynamic header, so a differencing VHD output could not name it; use --format raw (this disk's own sectors, the rest listed in the .badmap)");
        }

        return new VhdParentLink(header.ParentUuid, header.ParentTimestampSeconds, name,
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

    private static IBlockSource? OpenParentChain(VhdTarget target, VhdRecoveryPlan plan, VhdDynamicHeader header, List<Finding> findings, List<string> chain,
        out string missingReason)
    {
        missingReason = "not-found";
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
            missingReason = "uuid-mismatch";
            return null;
        }

        missingReason = "chain-broken";
        return parentChain.Content;
    }
}
