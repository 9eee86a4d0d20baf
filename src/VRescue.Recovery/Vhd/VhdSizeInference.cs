// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// The virtual size when both footers are lost. A BAT sized to the disk (qemu, older imports) gives it directly;
/// SM's BAT is preallocated for 2 TiB, so then the size is the larger of the last allocated block and what the guest
/// says about its disk (GPT alternate header LBA, MBR partition ends, ext block count), rounded up to 2 MiB as SM does.
/// </summary>
public static class VhdSizeInference
{
    public static ulong Infer(IBlockSource source, VhdDynamicHeader header, IReadOnlyDictionary<long, VhdBlockPlacement> placements,
        long entryCount, List<Finding> findings)
    {
        var bs = (long)header.BlockSizeBytes;
        if (header.MaxTableEntries != VhdRecoveryAnalyzer.SmMaxTableEntries && (ulong)header.MaxTableEntries * (ulong)bs <= VhdFooter.MaxCurrentSizeBytes)
        {
            return (ulong)header.MaxTableEntries * (ulong)bs;
        }

        var lower = placements.Count == 0 ? bs : (placements.Keys.Max() + 1) * bs;
        var draftSize = Math.Max(lower, Math.Min(entryCount, VhdBat.MaxEntries) * bs);
        var draft = new VhdRecoveryPlan(source, new VhdFooter { DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = (ulong)draftSize, DataOffsetBytes = 512 },
            header, placements, [], [], [], [], new VhdImageSummary("none", null, null, 0, false, null, null, []));
        var guest = draft.OpenGuest();
        var hint = GuestDiskSize(guest);
        var size = Math.Max(lower, hint is { } h ? RoundUpToSmBlock(h) : 0);
        findings.Add(new Finding("VHD_SIZE_INFERRED", Severity.Warning,
            hint is { } g
                ? $"virtual size inferred as {size} bytes: the guest's own structures span {g} bytes, the last allocated block ends at {lower}"
                : $"virtual size inferred as {size} bytes from the last allocated block only; the guest disk may be larger (trailing unallocated blocks read as zeros)",
            null, "curr_size", null, size.ToString()));
        return (ulong)size;
    }

    /// <summary>SM sizes VDIs in whole 2 MiB blocks: <paramref name="bytes"/> rounded up to one.</summary>
    public static long RoundUpToSmBlock(long bytes) => (bytes + (2L << 20) - 1) / (2L << 20) * (2L << 20);

    /// <summary>Disk size the guest's partition table or whole-disk ext filesystem implies; null when none is found.</summary>
    public static long? GuestDiskSize(IBlockSource guest)
    {
        var head = new byte[4096];
        guest.ReadZeroFilled(0, head);
        if (head.AsSpan(512, 8).SequenceEqual("EFI PART"u8))
        {
            // GPT header: AlternateLBA at 0x20 is the last sector of the disk.
            var alternate = BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(512 + 0x20));
            if (alternate is > 0 and < 1UL << 40)
            {
                return ((long)alternate + 1) * 512;
            }
        }

        if (head[510] == 0x55 && head[511] == 0xAA)
        {
            long end = 0;
            for (var i = 0; i < 4; i++)
            {
                var e = head.AsSpan(0x1BE + i * 16, 16);
                if (e[4] != 0)
                {
                    end = Math.Max(end, ((long)BinaryPrimitives.ReadUInt32LittleEndian(e[8..]) + BinaryPrimitives.ReadUInt32LittleEndian(e[12..])) * 512);
                }
            }

            if (end > 0)
            {
                return end;
            }
        }

        if (Ext4Superblock.LooksLikeExt(head))
        {
            var sb = Ext4Superblock.Decode(head.AsSpan(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes));
            if (sb.BlockSizeBytes is { } b && sb.BlocksCount < 1UL << 40)
            {
                return (long)sb.BlocksCount * b;
            }
        }

        return null;
    }
}
