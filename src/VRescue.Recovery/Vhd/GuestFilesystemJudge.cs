// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Formats.Swap;
using VRescue.Formats.Xfs;
using VRescue.Storage;
using VRescue.Storage.Partitions;

namespace VRescue.Recovery.Vhd;

/// <summary>A filesystem or volume found inside the guest disk, judged by its own structures.</summary>
/// <remarks>Partition: Partition number, or null for the whole disk.</remarks>
/// <remarks>Type: ext2, ext3, ext4, xfs, ntfs, swap, lvm2-pv, or unknown.</remarks>
/// <remarks>Health: healthy, damaged, lost-ranges (structures fine but bad ranges fall inside), unknown.</remarks>
/// <remarks>BadAreas: What the lost ranges hit, in the filesystem's own terms (groups, inode ranges, data blocks).</remarks>
/// <remarks>NextStep: The read-only check to run on the exported image.</remarks>
/// <remarks>Container: For an LV of the guest's own LVM, "lvm2 VG name LV name"; null otherwise.</remarks>
public sealed record GuestVolume(
    int? Partition, long StartBytes, long SizeBytes, string Type, string? Label, string? Uuid, string Health,
    IReadOnlyList<Finding> Findings, IReadOnlyList<string> BadAreas, string? NextStep, string? Container = null);

/// <summary>The guest disk: its partition table and volumes.</summary>
public sealed record GuestReport(string PartitionTable, IReadOnlyList<GuestVolume> Volumes, IReadOnlyList<Finding> Findings);

/// <summary>
/// Identifies what is inside a (repaired) VDI and how hurt it is: partition table (MBR/GPT), ext2/3/4 with superblock
/// backups, group descriptors and their checksums, XFS, NTFS with its MFT mirror, swap, LVM PVs; maps lost ranges
/// onto block groups and inode numbers; suggests the read-only checker to run next.
/// </summary>
public static partial class GuestFilesystemJudge
{
    private const int MaxBadAreas = 64;
    private const long MaxGroups = 1 << 20;

    /// <remarks>image: How to name the exported image in suggested commands.</remarks>
    public static GuestReport Judge(IBlockSource guest, IReadOnlyList<VhdBadRange> bad, string image)
    {
        var findings = new List<Finding>();
        PartitionTableReport? table = null;
        try
        {
            table = PartitionTableReader.Read(guest);
            findings.AddRange(table.Findings);
        }
        catch (Exception e) when (e is IOException or CorruptDataException)
        {
            findings.Add(new Finding("GUEST_TABLE_UNREADABLE", Severity.Warning, "guest partition table unreadable: " + e.Message, 0));
        }

        var volumes = new List<GuestVolume>();
        if (table is { Kind: not PartitionTableKind.None })
        {
            foreach (var p in table.Partitions)
            {
                var size = Math.Max(0, Math.Min(p.SizeBytes, guest.LengthBytes - p.StartBytes));
                volumes.AddRange(JudgeVolumes(guest.Slice(p.StartBytes, size), p.Index, p.StartBytes, bad, image));
            }
        }
        else
        {
            volumes.AddRange(JudgeVolumes(guest, null, 0, bad, image));
        }

        return new GuestReport(table?.Kind.ToString().ToLowerInvariant() ?? "unknown", volumes, findings);
    }

    /// <summary>The volume, and for a guest LVM PV also the LVs on it (PVs inside LVs only <see cref="MaxLvmDepth"/> deep).</summary>
    private static IEnumerable<GuestVolume> JudgeVolumes(IBlockSource volume, int? partition, long start, IReadOnlyList<VhdBadRange> bad, string image, int depth = 0)
    {
        var opened = Open(volume, partition, start, bad, image);
        return IsLvmPv(opened.Head) && depth < MaxLvmDepth
            ? JudgeLvmPv(volume, partition, start, bad, opened, image, depth)
            : [JudgeVolume(volume, partition, start, opened)];
    }

    private static bool IsLvmPv(byte[] head)
    {
        // LVM2 label: "LABELONE" in one of the first four sectors (lib/label/label.h LABEL_SCAN_SECTORS).
        for (var s = 0; s < 4; s++)
        {
            if (head.AsSpan(s * 512, 8).SequenceEqual("LABELONE"u8))
            {
                return true;
            }
        }

        return false;
    }

    private sealed record OpenedVolume(byte[] Head, List<VhdBadRange> LocalBad, List<string> LostNote, string OpenVolume);

    private static OpenedVolume Open(IBlockSource volume, int? partition, long start, IReadOnlyList<VhdBadRange> bad, string image)
    {
        // 64 KiB: a swap header's magic ends the first page, up to 64 KiB on arm64/ppc64 hosts.
        var head = new byte[65536];
        volume.ReadZeroFilled(0, head);
        var openVolume = partition is null ? $"{image}"
            : $"$(losetup -r -f --show -o {start} --sizelimit {volume.LengthBytes} {image})";
        var localBad = bad.Where(r => r.EndBytes > start && r.OffsetBytes < start + volume.LengthBytes)
            .Select(r => new VhdBadRange(Math.Max(0, r.OffsetBytes - start), Math.Min(r.EndBytes, start + volume.LengthBytes) - Math.Max(r.OffsetBytes, start), r.Reason))
            .ToList();
        var lostNote = localBad.Select(r => $"bytes {r.OffsetBytes}-{r.EndBytes - 1} of the volume lost ({r.Reason})").Take(MaxBadAreas).ToList();
        return new OpenedVolume(head, localBad, lostNote, openVolume);
    }

    private static GuestVolume JudgeVolume(IBlockSource volume, int? partition, long start, OpenedVolume opened)
    {
        var (head, localBad, lostNote, openVolume) = opened;
        if (Ext4Superblock.LooksLikeExt(head))
        {
            return JudgeExt(volume, partition, start, head, localBad, openVolume);
        }

        if (XfsSuperblock.TryDecode(head) is { } xfs)
        {
            return JudgeXfs(volume, partition, start, xfs, localBad, $"xfs_repair -n {(partition is null ? "-f " : "")}{openVolume}");
        }

        if (head.AsSpan(3, 8).SequenceEqual("NTFS    "u8))
        {
            return JudgeNtfs(volume, partition, start, head, localBad, lostNote, openVolume);
        }

        if (LinuxSwapHeader.TryDecode(head) is { } swap)
        {
            return JudgeSwap(volume, partition, start, swap, localBad, lostNote);
        }

        return new GuestVolume(partition, start, volume.LengthBytes, "unknown", null, null, localBad.Count > 0 ? "lost-ranges" : "unknown", [], lostNote, null);
    }

    private static GuestVolume JudgeExt(IBlockSource volume, int? partition, long start, byte[] head, List<VhdBadRange> bad, string openVolume)
    {
        var sb = Ext4Superblock.Decode(head.AsSpan(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes));
        var findings = sb.Validate().Select(f => f.Rebase(start)).ToList();
        var type = sb.Kind.ToString().ToLowerInvariant();
        var areas = new List<string>();
        var blockSize = (long)(sb.BlockSizeBytes ?? 1024);
        var firstData = sb.FirstDataBlock;
        var perGroup = (long)sb.BlocksPerGroup;
        var inodesPerGroup = (long)sb.InodesPerGroup;
        var inodeSize = (long)sb.InodeSizeBytes;
        var descSize = sb.DescriptorSizeBytes;
        string? backupHint = null;
        if (perGroup <= 0 || inodesPerGroup <= 0 || inodeSize < 128 || sb.BlocksCount <= firstData || sb.BlockSizeBytes is null)
        {
            findings.Add(new Finding("EXT_GEOMETRY", Severity.Error, "superblock geometry (blocks per group, inodes per group, inode size) is not sane", start + 1024));
            return new GuestVolume(partition, start, volume.LengthBytes, type, sb.VolumeName, sb.Uuid.ToString(), "damaged", findings, areas,
                $"e2fsck -fn -b {8 * 1024 * Math.Max(1, blockSize / 1024)} -B {blockSize} {openVolume}");
        }

        var groups = Math.Min(MaxGroups, ((long)sb.BlocksCount - firstData + perGroup - 1) / perGroup);
        if ((long)sb.BlocksCount * blockSize > volume.LengthBytes)
        {
            findings.Add(new Finding("EXT_BEYOND_VOLUME", Severity.Error,
                $"the filesystem has {sb.BlocksCount} blocks of {blockSize} bytes, more than the {volume.LengthBytes}-byte volume holds", start + 1024 + 4));
        }

        // Superblock backups (sparse_super: groups 0, 1 and powers of 3, 5, 7).
        var backups = BackupGroups(groups, (sb.FeatureRoCompat & Ext4Superblock.RoCompatSparseSuper) != 0).Take(8).ToList();
        var goodBackups = 0;
        var buffer = new byte[1024];
        foreach (var g in backups)
        {
            var at = (firstData + g * perGroup) * blockSize;
            volume.ReadZeroFilled(at, buffer);
            var backup = Ext4Superblock.Decode(buffer);
            if (backup.Magic == Ext4Superblock.MagicValue && backup.Uuid == sb.Uuid && backup.BlocksCount == sb.BlocksCount)
            {
                goodBackups++;
                backupHint ??= $"{firstData + g * perGroup}";
            }
            else
            {
                findings.Add(new Finding("EXT_BACKUP_SUPERBLOCK", Severity.Warning, $"superblock backup of group {g} at fs block {firstData + g * perGroup} is missing or differs from the primary",
                    start + at, "s_magic", $"0x{backup.Magic:X4}", "0xEF53"));
            }
        }

        // Group descriptors (right after the primary superblock's block; meta_bg places them elsewhere).
        var gdtBad = 0;
        if (Ext4GroupDescriptor.OffsetInFilesystemBytes(sb, 0) is { } gdtAt)
        {
            var gdt = new byte[checked((int)Math.Min(groups * descSize, 64L << 20))];
            volume.ReadZeroFilled(gdtAt, gdt);
            var seed = Ext4GroupDescriptor.ChecksumSeed(sb);
            for (long g = 0; g < gdt.Length / descSize; g++)
            {
                var d = gdt.AsSpan((int)(g * descSize), descSize);
                var desc = Ext4GroupDescriptor.Decode(d);
                var (bb, ib, it) = (desc.BlockBitmapBlock, desc.InodeBitmapBlock, desc.InodeTableBlock);
                var problem = bb >= sb.BlocksCount || ib >= sb.BlocksCount || it >= sb.BlocksCount || bb == 0 || ib == 0 || it == 0 ? "points outside the filesystem"
                    : sb.HasMetadataChecksum && Ext4GroupDescriptor.ComputeMetadataChecksum(seed, (uint)g, d) != desc.StoredChecksum ? "checksum does not match"
                    : null;
                if (problem is not null && gdtBad++ < 16)
                {
                    findings.Add(new Finding("EXT_GROUP_DESCRIPTOR", Severity.Error, $"group descriptor {g} {problem}", start + gdtAt + g * descSize, $"bg[{g}]"));
                }

                foreach (var r in bad)
                {
                    Describe(r, g, bb, ib, it, blockSize, inodesPerGroup, inodeSize, areas);
                }
            }
        }

        // Lost ranges in data areas (outside the per-group metadata described above).
        foreach (var r in bad)
        {
            var first = r.OffsetBytes / blockSize;
            var last = (r.EndBytes - 1) / blockSize;
            if (areas.Count < MaxBadAreas)
            {
                areas.Add($"fs blocks {first}-{last} (groups {(first - firstData) / perGroup}-{(last - firstData) / perGroup}) lost; the files using them: debugfs -R \"icheck {first} {last}\" then \"ncheck <inode>\"");
            }
        }

        if (goodBackups < backups.Count)
        {
            findings.Add(new Finding("EXT_BACKUPS_SUMMARY", Severity.Info, $"{goodBackups} of {backups.Count} superblock backups checked are intact", start + 1024));
        }

        var primaryBad = findings.Any(f => f.Severity == Severity.Error && f.Code is "EXT_BAD_CHECKSUM" or "EXT_BAD_BLOCK_SIZE");
        var damaged = findings.Any(f => f.Severity == Severity.Error);
        var health = damaged ? "damaged" : bad.Count > 0 ? "lost-ranges" : findings.Any(f => f.Severity == Severity.Warning) ? "warnings" : "healthy";
        var next = primaryBad && backupHint is not null
            ? $"e2fsck -fn -b {backupHint} -B {blockSize} {openVolume}"
            : $"e2fsck -fn {openVolume}";
        return new GuestVolume(partition, start, volume.LengthBytes, type, sb.VolumeName, sb.Uuid.ToString(), health, findings, areas.Take(MaxBadAreas).ToList(), next);
    }

    private static void Describe(VhdBadRange r, long group, ulong bb, ulong ib, ulong it, long blockSize, long inodesPerGroup, long inodeSize, List<string> areas)
    {
        if (areas.Count >= MaxBadAreas)
        {
            return;
        }

        var first = r.OffsetBytes / blockSize;
        var last = (r.EndBytes - 1) / blockSize;
        if ((long)bb >= first && (long)bb <= last)
        {
            areas.Add($"group {group}: block bitmap (fs block {bb}) lost");
        }

        if ((long)ib >= first && (long)ib <= last)
        {
            areas.Add($"group {group}: inode bitmap (fs block {ib}) lost");
        }

        var tableBlocks = (inodesPerGroup * inodeSize + blockSize - 1) / blockSize;
        var tFirst = Math.Max(first, (long)it);
        var tLast = Math.Min(last, (long)it + tableBlocks - 1);
        if (tFirst <= tLast)
        {
            var perBlock = blockSize / inodeSize;
            var inodeFirst = group * inodesPerGroup + (tFirst - (long)it) * perBlock + 1;
            var inodeLast = group * inodesPerGroup + (tLast - (long)it + 1) * perBlock;
            areas.Add($"group {group}: inode table blocks {tFirst}-{tLast} lost: inodes {inodeFirst}-{inodeLast}");
        }
    }

    private static IEnumerable<long> BackupGroups(long groups, bool sparse)
    {
        if (!sparse)
        {
            for (long g = 1; g < groups; g++)
            {
                yield return g;
            }

            yield break;
        }

        var set = new SortedSet<long>();
        if (groups > 1)
        {
            set.Add(1);
        }

        foreach (var b in new long[] { 3, 5, 7 })
        {
            for (var p = b; p < groups; p *= b)
            {
                set.Add(p);
            }
        }

        foreach (var g in set)
        {
            yield return g;
        }
    }

    // xfsprogs libxfs/xfs_format.h struct xfs_dsb (big-endian).

    /// <summary>Secondary superblocks read at most (one per allocation group).</summary>
    private const int MaxXfsAgs = 4096;

    /// <summary>XFS: primary superblock fields, a secondary superblock at the start of every AG, lost ranges as AGs and fs blocks.</summary>
    private static GuestVolume JudgeXfs(IBlockSource volume, int? partition, long start, XfsSuperblock sb, List<VhdBadRange> bad, string next)
    {
        var findings = new List<Finding>();
        var (blockSize, dataBlocks, agBlocks, agCount) = (sb.BlockSizeBytes, sb.DataBlocks, sb.AgBlocks, sb.AgCount);
        var (uuid, label) = (sb.Uuid.ToString(), sb.Label);
        if (!sb.IsGeometrySane)
        {
            findings.Add(new Finding("XFS_SUPERBLOCK", Severity.Error,
                $"primary superblock geometry is inconsistent (block size {blockSize}, {dataBlocks} blocks, {agCount} AGs of {agBlocks} blocks); xfs_repair uses the secondary superblocks",
                start, "sb_dblocks", dataBlocks.ToString(), $"in (agcount - 1) * agblocks .. agcount * agblocks"));
            return new GuestVolume(partition, start, volume.LengthBytes, "xfs", label, uuid, "damaged", findings, [], next);
        }

        if (dataBlocks * blockSize > (ulong)volume.LengthBytes)
        {
            findings.Add(new Finding("XFS_BEYOND_VOLUME", Severity.Error,
                $"the filesystem ({dataBlocks} blocks of {blockSize}) is larger than its volume ({volume.LengthBytes} bytes)", start, "sb_dblocks", dataBlocks.ToString()));
        }

        var agBytes = sb.AgBytes;
        bool Lost(long offset) => bad.Any(r => offset >= r.OffsetBytes && offset < r.EndBytes);
        var magic = new byte[4];
        var missing = new List<long>();
        for (long ag = 1; ag < Math.Min(agCount, MaxXfsAgs); ag++)
        {
            var at = ag * agBytes;
            if (at >= volume.LengthBytes || Lost(at))
            {
                continue;
            }

            volume.ReadZeroFilled(at, magic);
            if (!XfsSuperblock.HasMagic(magic))
            {
                missing.Add(ag);
            }
        }

        if (missing.Count > 0)
        {
            findings.Add(new Finding("XFS_SECONDARY_SUPERBLOCK", Severity.Warning,
                $"no superblock at the start of AG {string.Join(", ", missing.Take(16))}{(missing.Count > 16 ? ", ..." : "")}", start + missing[0] * agBytes, "sb_magicnum", null, "XFSB"));
        }

        var areas = bad.Take(MaxBadAreas).Select(r =>
        {
            var first = r.OffsetBytes / blockSize;
            var last = (r.EndBytes - 1) / blockSize;
            return $"fs blocks {first}-{last} (AG {first / agBlocks}-{last / agBlocks}) lost ({r.Reason}); xfs_repair -n names the inodes that used them";
        }).ToList();
        var health = findings.Any(f => f.Severity == Severity.Error) ? "damaged" : bad.Count > 0 ? "lost-ranges" : findings.Count > 0 ? "warnings" : "healthy";
        return new GuestVolume(partition, start, volume.LengthBytes, "xfs", label, uuid, health, findings, areas, next);
    }

    private static GuestVolume JudgeNtfs(IBlockSource volume, int? partition, long start, byte[] head, List<VhdBadRange> bad, List<string> lostNote, string openVolume)
    {
        var findings = new List<Finding>();
        var bytesPerSector = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(0x0B));
        var sectorsPerCluster = head[0x0D];
        var cluster = (long)bytesPerSector * sectorsPerCluster;
        var mft = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(0x30)) * cluster;
        var mirror = BinaryPrimitives.ReadInt64LittleEndian(head.AsSpan(0x38)) * cluster;
        var health = bad.Count > 0 ? "lost-ranges" : "healthy";
        if (cluster <= 0 || mft <= 0 || mirror <= 0 || mft >= volume.LengthBytes || mirror >= volume.LengthBytes)
        {
            findings.Add(new Finding("NTFS_BOOT", Severity.Error, "NTFS boot sector has no sane MFT / MFT mirror location", start + 0x30));
            health = "damaged";
        }
        else
        {
            // The mirror holds the first four MFT records ($MFT, $MFTMirr, $LogFile, $Volume), 1 KiB each.
            var a = new byte[4096];
            var b = new byte[4096];
            volume.ReadZeroFilled(mft, a);
            volume.ReadZeroFilled(mirror, b);
            if (!a.AsSpan(0, 4).SequenceEqual("FILE"u8))
            {
                findings.Add(new Finding("NTFS_MFT", Severity.Error, "the MFT does not start with a FILE record", start + mft));
                health = "damaged";
            }

            if (!a.AsSpan().SequenceEqual(b))
            {
                findings.Add(new Finding("NTFS_MFT_MIRROR", Severity.Warning, "the MFT mirror differs from the first MFT records", start + mirror));
                health = health == "healthy" ? "warnings" : health;
            }
        }

        // Volume serial number, boot sector 0x48 (8 bytes, little-endian): what blkid and Windows show as the NTFS "UUID".
        var serial = BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(0x48)).ToString("X16", System.Globalization.CultureInfo.InvariantCulture);
        return new GuestVolume(partition, start, volume.LengthBytes, "ntfs", null, serial, health, findings, lostNote, $"ntfsfix -n {openVolume}");
    }
}
