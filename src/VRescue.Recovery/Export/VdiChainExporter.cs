// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Sr;
using VRescue.Storage;
using VRescue.Storage.Output;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Export;

/// <summary>One file of a chain exported with --keep-chain, base first in <see cref="ExportedVdi.Layers"/>.</summary>
/// <param name="File">File name inside the output directory.</param>
/// <param name="Uuid">VDI uuid of the layer (from its LV name).</param>
/// <param name="FooterUuid">Footer uuid written (the source layer's, so children keep naming it).</param>
/// <param name="DiskType">dynamic | differencing.</param>
/// <param name="ParentFile">The file the layer's locators point at; null for the base.</param>
/// <param name="WrittenBytes">Block data written for this layer in this run (0 when an earlier VDI of the run wrote it).</param>
public sealed record ExportLayer(string File, string Uuid, string FooterUuid, string DiskType, string? ParentFile, long WrittenBytes);

/// <summary>Layer files already written in one export run, by footer uuid, so VDIs sharing a base write it once.</summary>
public sealed class ExportLayerCache
{
    internal Dictionary<Guid, (string File, uint TimestampSeconds)> Written { get; } = [];
}

/// <summary>
/// --keep-chain: writes each VHD of a chain as its own file, the base as a dynamic VHD (its guest view, bitmaps
/// honoured) and every child as a differencing VHD holding only its own allocated blocks with its own sector
/// bitmaps (clear bits stay clear, their stale bytes become zeros), whose header names the exported parent by footer
/// uuid, name and MacX/W2ku/W2ru locators. A raw base (LV-) becomes a dynamic VHD the lowest child points at.
/// The sha256 is computed by reading the written chain back through <see cref="VhdChain"/>.
/// </summary>
internal static class VdiChainExporter
{
    private const int BlockBytes = VhdDynamicWriter.BlockSizeBytes;

    /// <summary>(guest uuid, name label) for a layer's source.</summary>
    internal sealed record LayerSource(IBlockSource Source, Guid VdiUuid, string? NameLabel);

    internal static (string LeafFile, IReadOnlyList<ExportLayer> Layers, string Sha256, long Written) Write(
        VhdChain chain, Func<IBlockSource, LayerSource> describe, string outDir, ExportLayerCache cache, CancellationToken cancel)
    {
        var layers = new List<ExportLayer>();
        (Guid Uuid, uint Timestamp, string File)? below = null;
        long written = 0;
        if (chain.RawBase is { } rawBase)
        {
            var d = describe(rawBase);
            var uuid = d.VdiUuid;
            var file = ExportNames.FileName(d.VdiUuid, d.NameLabel, "vhd");
            var ts = Timestamp(DateTimeOffset.UtcNow);
            var bytes = WriteDynamic(rawBase, uuid, ts, outDir, file, cache, cancel);
            written += bytes;
            layers.Add(new ExportLayer(file, d.VdiUuid.ToString(), uuid.ToString(), "dynamic", null, bytes));
            below = (uuid, cache.Written[uuid].TimestampSeconds, file);
        }

        for (var i = chain.Images.Count - 1; i >= 0; i--)
        {
            cancel.ThrowIfCancellationRequested();
            var image = chain.Images[i];
            var footer = image.Footer!;
            var d = describe(image.Source);
            var file = ExportNames.FileName(d.VdiUuid, d.NameLabel, "vhd");
            long bytes;
            if (below is null)
            {
                bytes = WriteDynamic(new VhdBlockSource(image), footer.Uuid, footer.TimestampSeconds, outDir, file, cache, cancel);
                layers.Add(new ExportLayer(cache.Written[footer.Uuid].File, d.VdiUuid.ToString(), footer.Uuid.ToString(), "dynamic", null, bytes));
            }
            else
            {
                bytes = WriteDifferencing(image, new VhdParentLink(below.Value.Uuid, below.Value.Timestamp, below.Value.File), outDir, file, cache, cancel);
                layers.Add(new ExportLayer(cache.Written[footer.Uuid].File, d.VdiUuid.ToString(), footer.Uuid.ToString(), "differencing", below.Value.File, bytes));
            }

            written += bytes;
            var entry = cache.Written[footer.Uuid];
            below = (footer.Uuid, entry.TimestampSeconds, entry.File);
        }

        var leafFile = layers[^1].File;
        return (leafFile, layers, ReadBack(outDir, leafFile, cancel), written);
    }

    private static uint Timestamp(DateTimeOffset t) => (uint)Math.Clamp(t.ToUnixTimeSeconds() - VhdFooter.VhdEpochUnixSeconds, 0, uint.MaxValue);

    private static DateTimeOffset FromVhdSeconds(uint seconds) => DateTimeOffset.FromUnixTimeSeconds(VhdFooter.VhdEpochUnixSeconds + seconds);

    private static long WriteDynamic(IBlockSource content, Guid uuid, uint timestampSeconds, string outDir, string file, ExportLayerCache cache, CancellationToken cancel)
    {
        if (cache.Written.ContainsKey(uuid))
        {
            return 0;
        }

        var length = content.LengthBytes;
        using var writer = VhdDynamicWriter.Create(ExportNames.PathInside(outDir, file), length, uuid, FromVhdSeconds(timestampSeconds));
        var buffer = GC.AllocateUninitializedArray<byte>(BlockBytes);
        for (long block = 0; block < writer.BlockCount; block++)
        {
            cancel.ThrowIfCancellationRequested();
            var data = buffer.AsSpan(0, (int)Math.Min(BlockBytes, length - (block * BlockBytes)));
            content.ReadZeroFilled(block * BlockBytes, data);
            writer.WriteBlock(block, data);
        }

        var bytes = (long)writer.AllocatedBlocks * BlockBytes;
        writer.Commit();
        cache.Written[uuid] = (file, timestampSeconds);
        return bytes;
    }

    private static long WriteDifferencing(VhdImage image, VhdParentLink parent, string outDir, string file, ExportLayerCache cache, CancellationToken cancel)
    {
        var footer = image.Footer!;
        if (cache.Written.ContainsKey(footer.Uuid))
        {
            return 0;
        }

        if (image.Header!.BlockSizeBytes != BlockBytes)
        {
            throw new UnsupportedFormatFeatureException("VHD", "block size",
                $"{image.Source.Name}: --keep-chain copies blocks as they are and needs {BlockBytes}-byte blocks; this VHD has {image.Header.BlockSizeBytes}; export it flattened");
        }

        var length = image.VirtualSizeBytes;
        using var writer = VhdDynamicWriter.CreateDifferencing(ExportNames.PathInside(outDir, file), length, parent, footer.Uuid, FromVhdSeconds(footer.TimestampSeconds));
        var buffer = GC.AllocateUninitializedArray<byte>(BlockBytes);
        var fullBitmap = Enumerable.Repeat((byte)0xFF, 512).ToArray();
        for (long block = 0; block < writer.BlockCount; block++)
        {
            cancel.ThrowIfCancellationRequested();
            if (image.DataOffsetBytes(block) is not { } dataOffset)
            {
                continue;
            }

            var bitmap = image.IsBlockFull(block) ? fullBitmap : image.ReadSectorBitmap(block);
            var data = buffer.AsSpan(0, (int)Math.Min(BlockBytes, length - (block * BlockBytes)));
            image.Source.ReadZeroFilled(dataOffset, data);
            writer.WriteDifferencingBlock(block, data, bitmap.AsSpan(0, 512));
        }

        var bytes = (long)writer.AllocatedBlocks * BlockBytes;
        writer.Commit();
        cache.Written[footer.Uuid] = (file, footer.TimestampSeconds);
        return bytes;
    }

    /// <summary>sha256 of the guest view of the written leaf, its parents opened from the output directory by name.</summary>
    private static string ReadBack(string outDir, string leafFile, CancellationToken cancel)
    {
        var opened = new List<FileBlockSource>();
        try
        {
            FileBlockSource OpenFile(string name)
            {
                var f = FileBlockSource.Open(ExportNames.PathInside(outDir, name));
                opened.Add(f);
                return f;
            }

            var chain = VhdChain.OpenWithReferences(OpenFile(leafFile), r =>
                r.Name is { Length: > 0 } n && File.Exists(ExportNames.PathInside(outDir, n)) ? OpenFile(n) : null);
            var content = chain.OpenContent();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = GC.AllocateUninitializedArray<byte>(BlockBytes);
            for (long pos = 0; pos < content.LengthBytes; pos += BlockBytes)
            {
                cancel.ThrowIfCancellationRequested();
                var data = buffer.AsSpan(0, (int)Math.Min(BlockBytes, content.LengthBytes - pos));
                content.ReadZeroFilled(pos, data);
                sha.AppendData(data);
            }

            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }
        finally
        {
            opened.ForEach(f => f.Dispose());
        }
    }
}
