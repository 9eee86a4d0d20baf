// SPDX-License-Identifier: MIT
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Guest view of a <see cref="VhdRecoveryPlan"/>: like <see cref="Storage.Vhd.VhdBlockSource"/> but block positions come
/// from the plan (BAT, elimination or inference), and bytes the plan lists as lost read as zeros. Sector bitmaps are
/// always honoured (stale bytes in unwritten sectors are never exposed).
/// </summary>
internal sealed class VhdRecoveredSource : IBlockSource
{
    private readonly VhdRecoveryPlan _plan;
    private readonly IBlockSource? _parent;
    private readonly long _blockBytes;
    private readonly int _bitmapBytes;
    private readonly long _dataEndBytes;

    public VhdRecoveredSource(VhdRecoveryPlan plan, IBlockSource? parent)
    {
        _plan = plan;
        _parent = plan.Footer?.DiskType == VhdDiskType.Differencing ? parent : null;
        _blockBytes = plan.BlockSizeBytes;
        _bitmapBytes = (int)((plan.Header?.BitmapSizeSectors ?? 0) * 512);
        // Blocks may not reach into the last sector (where the footer belongs).
        _dataEndBytes = plan.Source.LengthBytes - VhdFooterLayout.Size;
        LengthBytes = plan.VirtualSizeBytes;
        Name = $"{plan.Source.Name} (repaired VHD guest view)";
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
        var dst = buffer[..total];
        if (_plan.Footer!.DiskType == VhdDiskType.Fixed)
        {
            var inData = (int)Math.Clamp(_dataEndBytes - offsetBytes, 0, total);
            _plan.Source.ReadZeroFilled(offsetBytes, dst[..inData]);
            dst[inData..].Clear();
            return total;
        }

        if (_blockBytes <= 0)
        {
            // Dynamic header lost and no BAT found by structure (VHD_BAT_NOT_FOUND): no block has a position and the
            // plan lists the whole disk as one bad range.
            dst.Clear();
            return total;
        }

        var done = 0;
        while (done < total)
        {
            var guest = offsetBytes + done;
            var block = guest / _blockBytes;
            var inBlock = guest % _blockBytes;
            var n = (int)Math.Min(total - done, _blockBytes - inBlock);
            ReadInBlock(block, inBlock, guest, dst.Slice(done, n));
            done += n;
        }

        return total;
    }

    /// <summary>The sector bitmap of a placed block (zero-filled past the end of the source).</summary>
    public byte[] ReadBitmap(long block)
    {
        var bits = new byte[_bitmapBytes];
        if (_plan.Placements.TryGetValue(block, out var p))
        {
            _plan.Source.ReadZeroFilled(p.BitmapOffsetBytes, bits);
        }

        return bits;
    }

    private void ReadInBlock(long block, long inBlock, long guest, Span<byte> destination)
    {
        if (!_plan.Placements.TryGetValue(block, out var placement))
        {
            if (IsLost(guest))
            {
                destination.Clear();
            }
            else
            {
                ReadBelow(guest, destination);
            }

            return;
        }

        var bitmap = ReadBitmap(block);
        var dataOffset = placement.BitmapOffsetBytes + _bitmapBytes;
        var end = inBlock + destination.Length;
        var pos = inBlock;
        while (pos < end)
        {
            var sector = pos / 512;
            var runEnd = Math.Min(end, VhdBitmap.RunEnd(bitmap, sector, (end + 511) / 512) * 512);
            var part = destination.Slice((int)(pos - inBlock), (int)(runEnd - pos));
            if (VhdBitmap.IsSet(bitmap, sector))
            {
                // Data past the end of the source is lost (listed in the bad map): zeros.
                var from = dataOffset + pos;
                var readable = (int)Math.Clamp(_dataEndBytes - from, 0, part.Length);
                _plan.Source.ReadZeroFilled(from, part[..readable]);
                part[readable..].Clear();
            }
            else
            {
                ReadBelow(guest + (pos - inBlock), part);
            }

            pos = runEnd;
        }
    }

    private bool IsLost(long guest)
    {
        foreach (var r in _plan.BadRanges)
        {
            if (guest >= r.OffsetBytes && guest < r.EndBytes)
            {
                return true;
            }
        }

        return false;
    }

    private void ReadBelow(long guest, Span<byte> destination)
    {
        if (_parent is null)
        {
            destination.Clear();
            return;
        }

        _parent.ReadZeroFilled(guest, destination);
    }
}
