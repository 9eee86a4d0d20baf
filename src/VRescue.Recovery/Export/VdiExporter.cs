// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Sr;
using VRescue.Recovery.Vhd;
using VRescue.Storage;
using VRescue.Storage.Output;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Export;

/// <summary>Which VDI to export, from which assembled SR, how, and what to call it in the manifest.</summary>
/// <param name="Sr">The SR assembled from the metadata version that maps this VDI.</param>
/// <param name="Vdi">The VDI (leaf of the chain to flatten).</param>
/// <param name="Deleted">Recovered from older metadata or a backup (not in the current metadata), or a hidden leaf.</param>
/// <param name="ExtraWarnings">Warnings the planner knows (extents reused since, ...), copied to the manifest.</param>
public sealed record VdiExportJob(AssembledSr Sr, AssembledVdi Vdi, bool Deleted = false, IReadOnlyList<string>? ExtraWarnings = null);

/// <summary>
/// Copies the guest view of one VDI (raw LV, or a VHD chain flattened through its sector bitmaps) into a sparse raw
/// image or a dynamic VHD, computing the sha256 of the guest content on the way. Reads are whole 2 MiB chunks, several
/// in parallel, one window ahead of the sha256, with writes (O_DIRECT where aligned) trailing behind it (three windows
/// of 4 KiB-aligned pinned buffers). Read errors do not stop the export: the bytes become zeros and their guest ranges are reported.
/// </summary>
public static class VdiExporter
{
    /// <summary>Chunk = the VHD block size tapdisk uses, so a chunk is one BAT entry and one output block.</summary>
    public const int ChunkBytes = VhdDynamicWriter.BlockSizeBytes;

    private const int WindowChunks = 8;

    /// <summary>Concurrent output writes: O_DIRECT writes wait for the device, several keep its queue busy.</summary>
    private const int Writers = 4;
    private static readonly byte[] s_zeros = new byte[ChunkBytes];

    /// <summary>Exports one VDI. A non-null <paramref name="keepChain"/> (--keep-chain, VHD only) writes each layer of a VHD
    /// chain as its own file; layers already written in the same run are shared. <paramref name="sha256"/> false
    /// (--no-sha256) leaves the manifest's sha256 null: the hash is the slowest stage (one core, ~1.6 GB/s with SHA-NI)
    /// when the disks are faster than that.</summary>
    public static ExportedVdi Export(VdiExportJob job, string outDir, ExportFormat format, IProgress<ExportProgress>? progress = null,
        int vdiIndex = 0, int vdiCount = 1, CancellationToken cancel = default, ExportLayerCache? keepChain = null, bool sha256 = true)
    {
        var vdi = job.Vdi;
        var started = Stopwatch.StartNew();
        var formatName = format == ExportFormat.Vhd ? "vhd" : "raw";
        var warnings = new List<string>(job.ExtraWarnings ?? []);
        var trackers = new List<(UnreadableTrackingSource Source, AssembledLv Lv)>();
        var baseEntry = new ExportedVdi
        {
            Uuid = vdi.Uuid.ToString(),
            NameLabel = vdi.NameLabel,
            NameDescription = vdi.Record?.NameDescription,
            Format = formatName,
            VirtualSizeBytes = vdi.VirtualSizeBytes ?? 0,
            Chain = [],
            Source = ExportSource.From(job.Sr.Metadata),
            Warnings = warnings,
            Status = "failed",
            Hidden = vdi.Hidden,
            Deleted = job.Deleted,
            IsSnapshot = vdi.Record?.IsASnapshot,
            SnapshotOf = vdi.Record?.SnapshotOf?.ToString(),
        };

        UnreadableTrackingSource Track(AssembledLv lv)
        {
            var t = new UnreadableTrackingSource(lv.Source);
            trackers.Add((t, lv));
            return t;
        }

        IBlockSource content;
        IReadOnlyList<ByteRange> lost = [];
        List<ExportChainMember> chain;
        Func<long, bool> knownZero = _ => false;
        if (!vdi.IsVhd)
        {
            content = Track(vdi.Lv);
            chain = [new ExportChainMember(vdi.Uuid.ToString(), vdi.Lv.Lv.Name, "raw", null, vdi.Hidden)];
        }
        else
        {
            var vhdChain = VhdChain.OpenWithReferences(Track(vdi.Lv), r => job.Sr.ResolveParent(r) is { } p ? Track(p) : null);
            warnings.AddRange(vhdChain.Findings.Where(f => f.Severity >= Severity.Warning).Select(f => $"{f.Code}: {f.Message}"));
            chain = DescribeChain(vhdChain, trackers);
            if (NeedsRepair(vhdChain) && Repair(VhdTarget.ForVdi(job.Sr, vdi, Track(vdi.Lv)), warnings, keepChain is not null) is { } repaired)
            {
                (content, lost) = repaired;
            }
            else if (vhdChain.Content is not null)
            {
                content = vhdChain.Content;
                knownZero = UnallocatedInEveryLayer(vhdChain);
                if (keepChain is not null && format == ExportFormat.Vhd)
                {
                    return ExportKeepingChain(job, vhdChain, outDir, keepChain, trackers, baseEntry with { Chain = chain }, started, cancel);
                }
            }
            else
            {
                var why = vhdChain.Findings.FirstOrDefault(f => f.Severity == Severity.Error);
                return baseEntry with { Chain = chain, Error = why is null ? "VHD chain cannot be read" : $"{why.Code}: {why.Message}", Seconds = started.Elapsed.TotalSeconds };
            }
        }

        var length = content.LengthBytes;
        if (length <= 0)
        {
            // An LV whose segments are all gone or unmappable in this metadata (or a VHD claiming size 0): nothing to write.
            return baseEntry with { Chain = chain, Error = $"virtual size {length}: no data to export (the LV maps no extents in this metadata version)", Seconds = started.Elapsed.TotalSeconds };
        }

        if (format == ExportFormat.Vhd && length % 512 != 0)
        {
            return baseEntry with { Chain = chain, Error = $"virtual size {length} is not a multiple of 512 bytes; export as raw", Seconds = started.Elapsed.TotalSeconds };
        }

        if (format == ExportFormat.Vhd && (ulong)length > VhdFooter.MaxCurrentSizeBytes)
        {
            return baseEntry with { Chain = chain, Error = $"virtual size {length} is more than a VHD can hold ({VhdFooter.MaxCurrentSizeBytes} bytes); export as raw", Seconds = started.Elapsed.TotalSeconds };
        }

        var fileName = ExportNames.FileName(vdi.Uuid, vdi.NameLabel, formatName);
        var path = ExportNames.PathInside(outDir, fileName);
        var (contentSha256, unreadable, written) = Copy(content, knownZero, length, path, format, sha256,
            p => progress?.Report(new ExportProgress(vdi.Uuid, vdi.NameLabel, p, length, vdiIndex, vdiCount)), cancel);

        foreach (var (t, lv) in trackers.Where(t => t.Source.Unreadable.Count > 0))
        {
            var ranges = t.Unreadable;
            warnings.Add($"{lv.Lv.Name}: {ranges.Sum(r => r.LengthBytes)} bytes in {ranges.Count} range(s) could not be read and were taken as zeros " +
                $"(first at LV offset {ranges[0].OffsetBytes}): {t.FirstError}");
        }

        unreadable = ByteRange.Merge([.. unreadable, .. lost]);
        return baseEntry with
        {
            File = fileName,
            VirtualSizeBytes = length,
            Sha256 = contentSha256,
            Chain = chain,
            Status = unreadable.Count > 0 ? "partial" : "exported",
            Partial = unreadable.Count > 0,
            UnreadableRanges = unreadable,
            WrittenBytes = written,
            Seconds = Math.Round(started.Elapsed.TotalSeconds, 3),
        };
    }

    /// <summary>
    /// True when the chain cannot be read as it stands: it does not open (both footers lost, header damaged, a loop), or
    /// the leaf's BAT sends blocks into the metadata, past the LV or onto each other (reading those would return metadata
    /// or another block's bytes as guest data).
    /// </summary>
    internal static bool NeedsRepair(VhdChain chain) =>
        chain.Content is null || (chain.Images.Count > 0
            && chain.Images[0].Findings.Any(f => f.Code is "VHD_BAT_ENTRY_OUT_OF_RANGE" or "VHD_BAT_ENTRY_IN_METADATA" or "VHD_BAT_ENTRY_OVERLAP"));

    /// <summary>
    /// For a chain that <see cref="NeedsRepair"/>: the guest view
    /// `vrescue vhd repair` would write (<see cref="VhdInspection.Check"/>: footer from its copy or rebuilt, BAT found by
    /// structure, blocks placed from the grid), read from the LV as it is; nothing is written to the source. Null when
    /// the bytes hold no VHD. The ranges repair could not recover are zeros in the output and listed as unreadable.
    /// </summary>
    internal static (IBlockSource Content, IReadOnlyList<ByteRange> Lost)? Repair(VhdTarget target, List<string> warnings, bool keepChain)
    {
        var (report, _, guest) = VhdInspection.Check(target, judgeGuest: false);
        if (guest is null || report.Verdict == VhdVerdict.NotAVhd)
        {
            return null;
        }

        warnings.Add("the VHD cannot be read correctly as it stands; exported through the repair `vrescue vhd repair` makes, from the LV as it is"
            + (report.Repairs.Count > 0 ? $": {string.Join("; ", report.Repairs)}" : "")
            + (keepChain ? " (--keep-chain does not apply to a repaired VHD: written flattened)" : ""));
        foreach (var f in report.Findings.Where(f => f.Severity >= Severity.Warning))
        {
            if (!warnings.Any(w => w.EndsWith(f.Message, StringComparison.Ordinal)))
            {
                warnings.Add($"repair: {f.Code}: {f.Message}");
            }
        }

        return (guest, report.BadRanges.Select(r => new ByteRange(r.OffsetBytes, r.LengthBytes)).ToList());
    }

    private static ExportedVdi ExportKeepingChain(VdiExportJob job, VhdChain vhdChain, string outDir, ExportLayerCache cache,
        List<(UnreadableTrackingSource Source, AssembledLv Lv)> trackers, ExportedVdi entry, Stopwatch started, CancellationToken cancel)
    {
        VdiChainExporter.LayerSource Describe(IBlockSource s)
        {
            var lv = trackers.FirstOrDefault(t => ReferenceEquals(t.Source, s)).Lv;
            var uuid = lv?.Name.VdiUuid ?? job.Vdi.Uuid;
            return new VdiChainExporter.LayerSource(s, uuid, job.Sr.Vdis.FirstOrDefault(v => v.Uuid == uuid)?.NameLabel);
        }

        string leafFile;
        IReadOnlyList<ExportLayer> layers;
        string sha256;
        long written;
        try
        {
            (leafFile, layers, sha256, written) = VdiChainExporter.Write(vhdChain, Describe, outDir, cache, cancel);
        }
        catch (UnsupportedFormatFeatureException e)
        {
            return entry with { Error = e.Message, Seconds = started.Elapsed.TotalSeconds };
        }

        var warnings = entry.Warnings.ToList();
        var failed = trackers.Where(t => t.Source.Unreadable.Count > 0).ToList();
        foreach (var (t, lv) in failed)
        {
            var ranges = t.Unreadable;
            warnings.Add($"{lv.Lv.Name}: {ranges.Sum(r => r.LengthBytes)} bytes in {ranges.Count} range(s) could not be read and were written as zeros " +
                $"(first at LV offset {ranges[0].OffsetBytes}): {t.FirstError}");
        }

        return entry with
        {
            File = leafFile,
            Sha256 = sha256,
            Layers = layers,
            Warnings = warnings,
            Status = failed.Count > 0 ? "partial" : "exported",
            Partial = failed.Count > 0,
            WrittenBytes = written,
            Seconds = Math.Round(started.Elapsed.TotalSeconds, 3),
        };
    }

    private static List<ExportChainMember> DescribeChain(VhdChain chain, List<(UnreadableTrackingSource Source, AssembledLv Lv)> trackers)
    {
        AssembledLv? LvOf(IBlockSource s) => trackers.FirstOrDefault(t => ReferenceEquals(t.Source, s)).Lv;
        var members = chain.Images.Select(i =>
        {
            var lv = LvOf(i.Source);
            return new ExportChainMember(lv?.Name.VdiUuid?.ToString() ?? "?", lv?.Lv.Name ?? i.Source.Name,
                i.Footer?.DiskType.ToString().ToLowerInvariant() ?? "?", i.Footer?.Uuid.ToString(), i.Footer?.Hidden == 1);
        }).ToList();
        if (chain.RawBase is { } raw && LvOf(raw) is { } rawLv)
        {
            members.Add(new ExportChainMember(rawLv.Name.VdiUuid?.ToString() ?? "?", rawLv.Lv.Name, "raw", null, rawLv.Lv.Tags.Contains("hidden")));
        }

        return members;
    }

    /// <summary>Chunk c reads as zeros without reading when no VHD in the chain allocates a block over it and there is no raw base.</summary>
    private static Func<long, bool> UnallocatedInEveryLayer(VhdChain chain)
    {
        if (chain.RawBase is not null || chain.Images.Any(i => i.Bat is null || i.Header is null))
        {
            return _ => false;
        }

        return c =>
        {
            var start = c * ChunkBytes;
            var end = start + ChunkBytes - 1;
            foreach (var image in chain.Images)
            {
                var blockBytes = (long)image.Header!.BlockSizeBytes;
                for (var b = start / blockBytes; b <= end / blockBytes; b++)
                {
                    if (image.Bat!.IsAllocated(b))
                    {
                        return false;
                    }
                }
            }

            return true;
        };
    }

    private enum ChunkState : byte
    {
        Zero,
        Data,
    }

    private sealed class Window(int chunks)
    {
        public Memory<byte>[] Buffers { get; } = Enumerable.Range(0, chunks).Select(_ => AlignedChunk()).ToArray();
        public ChunkState[] States { get; } = new ChunkState[chunks];
        public long FirstChunk { get; set; }
        public int Count { get; set; }
    }

    /// <summary>
    /// A chunk buffer on the pinned heap starting on a 4 KiB boundary, so whole-chunk writes can go to disk with O_DIRECT
    /// (<see cref="OutputFile"/>) instead of through the page cache.
    /// </summary>
    private static Memory<byte> AlignedChunk()
    {
        var array = GC.AllocateUninitializedArray<byte>(ChunkBytes + OutputFile.DirectAlignmentBytes, pinned: true);
        var address = (long)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(array, 0);
        var skip = (int)((OutputFile.DirectAlignmentBytes - (address % OutputFile.DirectAlignmentBytes)) % OutputFile.DirectAlignmentBytes);
        return array.AsMemory(skip, ChunkBytes);
    }

    /// <summary>Copies guest content that does not come from an assembled SR (a carved VDI) with the same copy loop.</summary>
    internal static (string? Sha256, IReadOnlyList<ByteRange> Unreadable, long Written) CopyContent(IBlockSource content, string path, ExportFormat format,
        Action<long> progress, CancellationToken cancel) => Copy(content, _ => false, content.LengthBytes, path, format, computeSha256: true, progress, cancel);

    /// <summary>The copy loop: read window w+1 while hashing and writing window w.</summary>
    private static (string? Sha256, IReadOnlyList<ByteRange> Unreadable, long Written) Copy(IBlockSource content, Func<long, bool> knownZero, long length, string path,
        ExportFormat format, bool computeSha256, Action<long> progress, CancellationToken cancel)
    {
        var chunkCount = (length + ChunkBytes - 1) / ChunkBytes;
        var unreadable = new ConcurrentBag<ByteRange>();
        using var sha = computeSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        using var raw = format == ExportFormat.Raw ? SparseRawWriter.Create(path, length) : null;
        using var vhd = format == ExportFormat.Vhd ? VhdDynamicWriter.Create(path, length) : null;
        var readers = Math.Clamp(Environment.ProcessorCount, 2, 8);
        Window[] windows = [new(WindowChunks), new(WindowChunks), new(WindowChunks)];

        Task Read(Window w, long first) => Task.Run(() =>
        {
            w.FirstChunk = first;
            w.Count = (int)Math.Min(WindowChunks, chunkCount - first);
            Parallel.For(0, w.Count, new ParallelOptions { MaxDegreeOfParallelism = readers, CancellationToken = cancel }, i =>
            {
                var chunk = first + i;
                var offset = chunk * ChunkBytes;
                var buffer = w.Buffers[i].Span[..(int)Math.Min(ChunkBytes, length - offset)];
                w.States[i] = knownZero(chunk) ? ChunkState.Zero : ReadChunk(content, offset, buffer, unreadable);
            });
        }, cancel);

        void Hash(Window w)
        {
            if (sha is null)
            {
                return;
            }

            for (var i = 0; i < w.Count; i++)
            {
                var len = (int)Math.Min(ChunkBytes, length - ((w.FirstChunk + i) * ChunkBytes));
                sha.AppendData(w.States[i] == ChunkState.Zero ? s_zeros.AsSpan(0, len) : w.Buffers[i].Span[..len]);
            }
        }

        Task Write(Window w) => Task.Run(() => Parallel.For(0, w.Count, new ParallelOptions { MaxDegreeOfParallelism = Writers, CancellationToken = cancel }, i =>
        {
            if (w.States[i] == ChunkState.Zero)
            {
                return;
            }

            var chunk = w.FirstChunk + i;
            var data = w.Buffers[i].Span[..(int)Math.Min(ChunkBytes, length - (chunk * ChunkBytes))];
            if (raw is not null)
            {
                raw.Write(chunk * ChunkBytes, data);
            }
            else
            {
                vhd!.WriteBlock(chunk, data);
            }
        }), cancel);

        // sha256 is sequential and the slowest stage (~1.6 GB/s with SHA-NI), so it runs on this thread without pause:
        // the next window is read ahead while this one is hashed, and writes trail behind on their own, a window is
        // reused for reading only when its writes are done.
        var reads = new Task[windows.Length];
        var writes = Enumerable.Repeat(Task.CompletedTask, windows.Length).ToArray();
        try
        {
            if (chunkCount > 0)
            {
                reads[0] = Read(windows[0], 0);
                var index = 0;
                for (long first = 0; first < chunkCount; first += WindowChunks, index++)
                {
                    var slot = index % windows.Length;
                    reads[slot].GetAwaiter().GetResult();
                    var next = first + WindowChunks;
                    if (next < chunkCount)
                    {
                        var nextSlot = (index + 1) % windows.Length;
                        writes[nextSlot].GetAwaiter().GetResult();
                        reads[nextSlot] = Read(windows[nextSlot], next);
                    }

                    writes[slot] = Write(windows[slot]);
                    Hash(windows[slot]);
                    progress(Math.Min(length, (first + windows[slot].Count) * ChunkBytes));
                    cancel.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            // Never leave a read or write running on buffers or a file about to be disposed.
            foreach (var t in reads.Concat(writes).Where(t => t is not null))
            {
                try
                {
                    t.Wait(CancellationToken.None);
                }
                catch (AggregateException)
                {
                    // Already observed below, or the export is being abandoned with the first error.
                }
            }
        }

        foreach (var t in writes)
        {
            t.GetAwaiter().GetResult();
        }

        long written;
        if (raw is not null)
        {
            raw.Commit();
            written = raw.WrittenBytes;
        }
        else
        {
            written = (long)vhd!.AllocatedBlocks * ChunkBytes;
            vhd.Commit();
        }

        return (sha is null ? null : Convert.ToHexStringLower(sha.GetHashAndReset()), ByteRange.Merge(unreadable), written);
    }

    /// <summary>Reads <paramref name="piece"/>; true when a read below it failed (it holds zeros there).</summary>
    private static bool Fails(IBlockSource content, long offset, Span<byte> piece)
    {
        var before = UnreadableTrackingSource.ThreadFailures;
        content.ReadZeroFilled(offset, piece);
        return UnreadableTrackingSource.ThreadFailures != before;
    }

    private static ChunkState ReadChunk(IBlockSource content, long offset, Span<byte> buffer, ConcurrentBag<ByteRange> unreadable)
    {
        if (Fails(content, offset, buffer))
        {
            // Something below failed during this chunk: find which guest pieces, then which sectors of them, it affected.
            for (var pos = 0; pos < buffer.Length; pos += UnreadableTrackingSource.GranularityBytes)
            {
                var piece = buffer.Slice(pos, Math.Min(UnreadableTrackingSource.GranularityBytes, buffer.Length - pos));
                if (Fails(content, offset + pos, piece))
                {
                    for (var sector = 0; sector < piece.Length; sector += UnreadableTrackingSource.SectorBytes)
                    {
                        var part = piece.Slice(sector, Math.Min(UnreadableTrackingSource.SectorBytes, piece.Length - sector));
                        if (Fails(content, offset + pos + sector, part))
                        {
                            unreadable.Add(new ByteRange(offset + pos + sector, part.Length));
                        }
                    }
                }
            }
        }

        return buffer.ContainsAnyExcept((byte)0) ? ChunkState.Data : ChunkState.Zero;
    }
}
