// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Ext;
using VRescue.Storage;
using VRescue.Storage.Partitions;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Places orphan blocks by ext2/3/4 structure: a superblock names its own group (s_block_group_nr), so a block holding
/// a superblock backup of a filesystem whose start is known can only sit at one guest position (fs start +
/// (s_first_data_block + group × s_blocks_per_group) × block size). The filesystem start comes from the guest partition
/// table or the primary superblock; the backup must carry the primary's uuid, so stale blocks of older filesystems are
/// not placed. Everything placed this way is reported as inferred.
/// </summary>
public static class ExtBlockPlacer
{
    private const int MagicOffset = 0x38;

    public static IEnumerable<(VhdOrphanBlock Orphan, long GuestBlock, string Evidence)> Place(
        VhdRecoveryPlan draft, IReadOnlyList<VhdOrphanBlock> orphans, Func<long, bool> isOpen)
    {
        var guest = draft.OpenGuest();
        var blockBytes = draft.BlockSizeBytes;
        var bitmapBytes = (draft.Header?.BitmapSizeSectors ?? 1) * 512;
        var known = KnownFilesystems(guest);
        var claimed = new Dictionary<long, VhdOrphanBlock>();
        var results = new List<(VhdOrphanBlock, long, string)>();
        var data = new byte[blockBytes];
        foreach (var orphan in orphans)
        {
            draft.Source.ReadZeroFilled(orphan.BitmapOffsetBytes + bitmapBytes, data);
            (long Block, string Evidence)? found = null;
            for (var o = 0; o + 1024 <= data.Length && found is null; o += 512)
            {
                if (BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(o + MagicOffset)) != Ext4Superblock.MagicValue)
                {
                    continue;
                }

                var sb = Ext4Superblock.Decode(data.AsSpan(o, 1024));
                if (sb.BlockSizeBytes is not { } b || sb.InodesCount == 0 || sb.BlocksCount == 0)
                {
                    continue;
                }

                var group = sb.BlockGroupNumber;
                var inFs = sb.CopyOffsetInFilesystemBytes!.Value;
                var starts = known.Where(k => k.Uuid == sb.Uuid).Select(k => k.StartBytes).ToList();
                if (starts.Count == 0 && known.Count == 0 && group == 0)
                {
                    // Primary superblock, nothing else known: the filesystem starts in this block (o - 1024 into it).
                    starts.Add(Math.Max(0, o - 1024));
                }

                foreach (var start in starts)
                {
                    var blockStart = start + inFs - o;
                    if (blockStart >= 0 && blockStart % blockBytes == 0 && isOpen(blockStart / blockBytes))
                    {
                        found = (blockStart / blockBytes,
                            $"ext superblock {(group == 0 ? "(primary)" : $"backup of group {group}")} of filesystem {sb.Uuid} at byte {o} of the block, filesystem at guest byte {start}");
                        break;
                    }
                }
            }

            if (found is { } f && claimed.TryAdd(f.Block, orphan))
            {
                results.Add((orphan, f.Block, f.Evidence));
            }
        }

        return results;
    }

    /// <summary>ext filesystems whose primary superblock is readable, by start offset (whole disk and partitions).</summary>
    internal static List<(long StartBytes, Guid Uuid)> KnownFilesystems(IBlockSource guest)
    {
        var starts = new List<long> { 0 };
        try
        {
            starts.AddRange(PartitionTableReader.Read(guest).Partitions.Select(p => p.StartBytes));
        }
        catch (Exception e) when (e is IOException or Formats.Common.CorruptDataException)
        {
            // No readable table: only the whole disk.
        }

        var result = new List<(long, Guid)>();
        var buffer = new byte[2048];
        foreach (var s in starts.Distinct())
        {
            guest.ReadZeroFilled(s, buffer);
            if (Ext4Superblock.LooksLikeExt(buffer))
            {
                result.Add((s, Ext4Superblock.Decode(buffer.AsSpan(1024, 1024)).Uuid));
            }
        }

        return result;
    }
}
