// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Storage.Vhd;

/// <summary>
/// The guest view of a VHD (<see cref="VhdImage.VirtualSizeBytes"/> bytes). Honours sector bitmaps: a sector whose
/// bit is clear reads as zeros in a dynamic disk and from the parent in a differencing disk, never as the stale bytes
/// tapdisk leaves in unwritten parts of a block on LVM (blktap drivers/block-vhd.c schedule_zero_bm_write).
/// Blocks the batmap marks full are read without their bitmap. Reads are per contiguous run, not per sector.
/// </summary>
public sealed class VhdBlockSource : IBlockSource
{
    private readonly VhdImage _image;
    private readonly IBlockSource? _parent;
    private readonly long _blockSizeBytes;
    private readonly long _bitmapSizeBytes;
    private volatile CachedBitmap? _lastBitmap;

    /// <param name="image">An opened image with <see cref="VhdImage.CanRead"/>.</param>
    /// <param name="parent">Guest view of the parent; required for differencing disks, ignored otherwise.</param>
    public VhdBlockSource(VhdImage image, IBlockSource? parent = null)
    {
        if (!image.CanRead)
        {
            var first = image.Findings.FirstOrDefault(f => f.Severity == Severity.Error);
            throw new CorruptDataException("VHD", "image", first?.Code ?? "VHD_UNREADABLE",
                $"{image.Source.Name}: cannot read VHD content: {first?.Message ?? "footer, header or BAT unusable"}",
                first?.OffsetBytes, first?.Field, first?.Stored, first?.Expected);
        }

        if (image.Info.BatmapHeader is { IsEncrypted: true })
        {
            throw new UnsupportedFormatFeatureException("VHD", "encryption",
                $"{image.Source.Name}: the VHD is encrypted (batmap keyhash set); its blocks cannot be read without the host key");
        }

        var footer = image.Footer!;
        if (footer.DiskType == VhdDiskType.Differencing && parent is null)
        {
            throw new ArgumentException("a differencing VHD needs its parent's guest view", nameof(parent));
        }

        _image = image;
        _parent = footer.DiskType == VhdDiskType.Differencing ? parent : null;
        _blockSizeBytes = image.Header?.BlockSizeBytes ?? 0;
        _bitmapSizeBytes = (image.Header?.BitmapSizeSectors ?? 0) * 512;
        LengthBytes = image.VirtualSizeBytes;
        Name = $"{image.Source.Name} (VHD guest view)";
    }

    public string Name { get; }

    public long LengthBytes { get; }

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes < 0 || offsetBytes >= LengthBytes || buffer.IsEmpty)
        {
            return 0;
        }

        var total = (int)Math.Min(buffer.Length, LengthBytes - offsetBytes);
        if (_image.Footer!.DiskType == VhdDiskType.Fixed)
        {
            // Fixed: raw data followed by the footer; anything past the data area reads as zeros.
            var dataEnd = _image.Source.LengthBytes - VhdFooterLayout.Size;
            var inData = (int)Math.Clamp(dataEnd - offsetBytes, 0, total);
            _image.Source.ReadZeroFilled(offsetBytes, buffer[..inData]);
            buffer[inData..total].Clear();
            return total;
        }

        var done = 0;
        while (done < total)
        {
            var guest = offsetBytes + done;
            var block = guest / _blockSizeBytes;
            var inBlock = guest % _blockSizeBytes;
            var n = (int)Math.Min(total - done, _blockSizeBytes - inBlock);
            ReadInBlock(block, inBlock, guest, buffer.Slice(done, n));
            done += n;
        }

        return total;
    }

    private void ReadInBlock(long block, long inBlock, long guest, Span<byte> destination)
    {
        if (_image.DataOffsetBytes(block) is not { } dataOffset)
        {
            ReadBelow(guest, destination);
            return;
        }

        if (_image.IsBlockFull(block))
        {
            _image.Source.ReadZeroFilled(dataOffset + inBlock, destination);
            return;
        }

        var bitmap = Bitmap(block);
        var end = inBlock + destination.Length;
        var pos = inBlock;
        while (pos < end)
        {
            var sector = pos / 512;
            var runEndSector = VhdBitmap.RunEnd(bitmap, sector, (end + 511) / 512);
            var runEnd = Math.Min(end, runEndSector * 512);
            var part = destination.Slice((int)(pos - inBlock), (int)(runEnd - pos));
            if (VhdBitmap.IsSet(bitmap, sector))
            {
                _image.Source.ReadZeroFilled(dataOffset + pos, part);
            }
            else
            {
                ReadBelow(guest + (pos - inBlock), part);
            }

            pos = runEnd;
        }
    }

    /// <summary>Data not present in this VHD: the parent's for differencing disks, zeros otherwise.</summary>
    private void ReadBelow(long guest, Span<byte> destination)
    {
        if (_parent is null)
        {
            destination.Clear();
            return;
        }

        // A parent smaller than the child reads as zeros past its end (libvhd).
        _parent.ReadZeroFilled(guest, destination);
    }

    private byte[] Bitmap(long block)
    {
        if (_lastBitmap is { } cached && cached.Block == block)
        {
            return cached.Bits;
        }

        var bits = new byte[_bitmapSizeBytes];
        _image.Source.ReadZeroFilled(_image.BitmapOffsetBytes(block)!.Value, bits);
        _lastBitmap = new CachedBitmap(block, bits);
        return bits;
    }

    private sealed record CachedBitmap(long Block, byte[] Bits);
}
