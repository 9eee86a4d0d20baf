// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Lvm;

namespace VRescue.Recovery.Tests.Partitions;

/// <summary>In-memory disks for hostile and boundary tests; real-tool images are in VRescue.Cli.Tests/Partitions.</summary>
internal static class SyntheticDisk
{
    public const long MiB = 1 << 20;

    /// <summary>An LVM label in sector 1 and a CRC-valid mda header at 4096 of a PV at <paramref name="start"/>.</summary>
    public static void WritePv(byte[] disk, long start, long sizeBytes, string uuid = "ppJvqWKZeyljd1y8gZS6qie71qqMd8mp")
    {
        var label = LvmLabel.Create(1, uuid, (ulong)sizeBytes, [new LvmDiskLocation(MiB, 0)], [new LvmDiskLocation(4096, MiB - 4096)]);
        label.Raw.CopyTo(disk.AsSpan((int)start + 512));
        var mda = LvmMdaHeader.Create(4096, MiB - 4096, default);
        var header = new byte[512];
        mda.Encode(header);
        header.CopyTo(disk.AsSpan((int)start + 4096));
    }

    /// <summary>A minimal ext4-looking superblock (the fields the scanner and Ext4Superblock read) for a filesystem at <paramref name="start"/>.</summary>
    public static void WriteExt(byte[] disk, long start, uint blocks, uint logBlockSize = 2)
    {
        var sb = disk.AsSpan((int)start + 1024, 1024);
        BinaryPrimitives.WriteUInt32LittleEndian(sb, 64);          // s_inodes_count
        BinaryPrimitives.WriteUInt32LittleEndian(sb[0x4..], blocks); // s_blocks_count_lo
        BinaryPrimitives.WriteUInt32LittleEndian(sb[0x18..], logBlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(sb[0x20..], 32768); // s_blocks_per_group
        BinaryPrimitives.WriteUInt32LittleEndian(sb[0x28..], 64);    // s_inodes_per_group
        BinaryPrimitives.WriteUInt16LittleEndian(sb[0x38..], 0xEF53);
        BinaryPrimitives.WriteUInt16LittleEndian(sb[0x3A..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(sb[0x3C..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(sb[0x4C..], 1);
    }

    /// <summary>A GPT header (and its array) at <paramref name="lba"/> with the given entries; CRCs valid.</summary>
    public static void WriteGpt(byte[] disk, long lba, long alternateLba, long entriesLba, IEnumerable<GptPartitionEntry> entries,
        ulong firstUsable = 34, ulong? lastUsable = null, uint count = 128)
    {
        var sectors = disk.Length / 512;
        var array = new byte[count * 128];
        GptPartitionEntry.EncodeArray(entries, array, 128);
        array.CopyTo(disk, entriesLba * 512);
        var header = new GptHeader
        {
            CurrentLba = (ulong)lba,
            BackupLba = (ulong)alternateLba,
            FirstUsableLba = firstUsable,
            LastUsableLba = lastUsable ?? (ulong)(sectors - 34),
            DiskGuid = Guid.Parse("11111111-2222-3333-4444-555555555555"),
            PartitionEntriesLba = (ulong)entriesLba,
            NumberOfPartitionEntries = count,
            SizeOfPartitionEntry = 128,
            PartitionEntryArrayCrc32 = Crc32.Ieee(array),
        };
        header.Encode(disk.AsSpan((int)(lba * 512), 512));
    }

    public static GptPartitionEntry Entry(int index, long firstLba, long lastLba, Guid? type = null) =>
        new(index, type ?? GptPartitionTypes.LinuxLvm, Guid.NewGuid(), (ulong)firstLba, (ulong)lastLba, 0, $"p{index}");
}
