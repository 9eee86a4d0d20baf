// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Storage.Partitions;

namespace VRescue.Storage.Tests.Partitions;

public class PartitionTableReaderHostileTests
{
    private const int DiskSectors = 2048; // 1 MiB

    private static PartitionTableReport Read(byte[] disk) => PartitionTableReader.Read(new MemoryBlockSource(disk));

    private static byte[] WithMbr(params MbrPartitionEntry[] entries)
    {
        var disk = new byte[DiskSectors * 512];
        new MbrPartitionTable(1, MbrLayout.BootSignatureValue, entries).Encode(disk);
        return disk;
    }

    private static void PutEbr(byte[] disk, long lba, params MbrPartitionEntry[] entries) =>
        new MbrPartitionTable(0, MbrLayout.BootSignatureValue, entries).Encode(disk.AsSpan((int)(lba * 512), 512));

    [Fact]
    public void Zeroed_disk_has_no_table_and_no_findings()
    {
        var r = Read(new byte[DiskSectors * 512]);
        Assert.Equal(PartitionTableKind.None, r.Kind);
        Assert.Empty(r.Findings);
        Assert.Empty(r.Partitions);
    }

    [Fact]
    public void Whole_disk_lvm_pv_label_is_not_a_partition_table()
    {
        var disk = new byte[DiskSectors * 512];
        "LABELONE"u8.CopyTo(disk.AsSpan(512));
        "LVM2 001"u8.CopyTo(disk.AsSpan(512 + 24));
        var r = Read(disk);
        Assert.Equal((PartitionTableKind.None, 0), (r.Kind, r.Findings.Count));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(511)]
    public void Disk_shorter_than_a_sector_gives_a_finding(int lengthBytes)
    {
        var r = Read(new byte[lengthBytes]);
        Assert.Equal(PartitionTableKind.None, r.Kind);
        Assert.Equal("PART_DISK_TOO_SHORT", Assert.Single(r.Findings).Code);
    }

    [Fact]
    public void All_0xFF_disk_gives_no_table_and_no_exception()
    {
        var r = Read(Enumerable.Repeat((byte)0xFF, DiskSectors * 512).ToArray());
        Assert.Equal(PartitionTableKind.None, r.Kind);
    }

    [Fact]
    public void Random_disks_never_throw()
    {
        var rng = new Random(42);
        for (var i = 0; i < 300; i++)
        {
            var disk = new byte[rng.Next(0, 64) * 512 + rng.Next(0, 2) * 100];
            rng.NextBytes(disk);
            if (disk.Length >= 512 && i % 3 == 0)
            {
                disk[510] = 0x55;
                disk[511] = 0xAA;
            }

            if (disk.Length >= 1024 && i % 2 == 0)
            {
                "EFI PART"u8.CopyTo(disk.AsSpan(512));
            }

            _ = Read(disk);
        }
    }

    [Fact]
    public void Ebr_pointing_to_itself_gives_a_finding_not_a_hang()
    {
        var disk = WithMbr(new MbrPartitionEntry(1, 0, MbrPartitionTypes.Extended, 100, 1000));
        PutEbr(disk, 100, new MbrPartitionEntry(1, 0, MbrPartitionTypes.Linux, 10, 10), new MbrPartitionEntry(2, 0, MbrPartitionTypes.Extended, 0, 100));

        var r = Read(disk);

        Assert.Equal(["MBR_EBR_LOOP"], r.Findings.Select(f => f.Code));
        Assert.Equal([1, 5], r.Partitions.Select(p => p.Index));
    }

    [Fact]
    public void Two_ebrs_pointing_at_each_other_give_a_finding_not_a_hang()
    {
        var disk = WithMbr(new MbrPartitionEntry(1, 0, MbrPartitionTypes.ExtendedLba, 100, 1000));
        PutEbr(disk, 100, new MbrPartitionEntry(1, 0, MbrPartitionTypes.Linux, 10, 10), new MbrPartitionEntry(2, 0, MbrPartitionTypes.Extended, 200, 100));
        PutEbr(disk, 300, new MbrPartitionEntry(1, 0, MbrPartitionTypes.Linux, 10, 10), new MbrPartitionEntry(2, 0, MbrPartitionTypes.Extended, 0, 100));

        var r = Read(disk);

        Assert.Equal(["MBR_EBR_LOOP"], r.Findings.Select(f => f.Code));
        Assert.Equal([1, 5, 6], r.Partitions.Select(p => p.Index));
        Assert.Equal(310L * 512, r.Partitions[2].StartBytes);
    }

    [Fact]
    public void Overlapping_and_out_of_disk_mbr_entries_are_findings()
    {
        var r = Read(WithMbr(
            new MbrPartitionEntry(1, 0, MbrPartitionTypes.Linux, 100, 500),
            new MbrPartitionEntry(2, 0, MbrPartitionTypes.LinuxLvm, 400, 5000)));

        Assert.Equal(["MBR_ENTRIES_OVERLAP", "MBR_ENTRY_BEYOND_DISK"], r.Findings.Select(f => f.Code).Order());
        Assert.Equal(2, r.Partitions.Count);
    }

    [Fact]
    public void Gpt_with_a_huge_entry_count_is_a_finding_without_a_huge_read()
    {
        var disk = WithMbr(new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1, DiskSectors - 1));
        var header = new GptHeader
        {
            CurrentLba = 1, BackupLba = DiskSectors - 1, FirstUsableLba = 34, LastUsableLba = DiskSectors - 34,
            PartitionEntriesLba = 2, NumberOfPartitionEntries = uint.MaxValue, SizeOfPartitionEntry = 128,
        };
        header.Encode(disk.AsSpan(512, 512));

        var r = Read(disk);

        Assert.Equal(PartitionTableKind.Gpt, r.Kind);
        Assert.Contains(r.Findings, f => f.Code == "GPT_ENTRY_ARRAY_TOO_LARGE" && f.OffsetBytes == 512 + 80);
        Assert.Empty(r.Partitions);
    }

    [Fact]
    public void Gpt_with_overlapping_entries_lists_them_with_findings_at_absolute_offsets()
    {
        var disk = WithMbr(new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1, DiskSectors - 1));
        var array = new byte[128 * 128];
        GptPartitionEntry.EncodeArray([
            new(1, GptPartitionTypes.LinuxLvm, Guid.NewGuid(), 100, 999, 0, "a"),
            new(2, new Guid("11111111-2222-3333-4444-555555555555"), Guid.NewGuid(), 500, 1500, 0, "b")], array, 128);
        var header = new GptHeader
        {
            CurrentLba = 1, BackupLba = DiskSectors - 1, FirstUsableLba = 34, LastUsableLba = DiskSectors - 34,
            PartitionEntriesLba = 2, NumberOfPartitionEntries = 128, SizeOfPartitionEntry = 128,
            PartitionEntryArrayCrc32 = Crc32.Ieee(array),
        };
        header.Encode(disk.AsSpan(512, 512));
        array.CopyTo(disk, 1024);
        array.CopyTo(disk, (DiskSectors - 33) * 512);
        header.AsBackup(DiskSectors - 33).Encode(disk.AsSpan((DiskSectors - 1) * 512, 512));

        var r = Read(disk);

        Assert.True(r.PrimaryValid && r.BackupValid);
        var f = Assert.Single(r.Findings);
        Assert.Equal("GPT_ENTRIES_OVERLAP", f.Code);
        Assert.Equal(1024 + 128 + 32, f.OffsetBytes);
        Assert.Equal(2, r.Partitions.Count);
        Assert.Equal(("Unknown", "11111111-2222-3333-4444-555555555555"), (r.Partitions[1].TypeName, r.Partitions[1].TypeCode));
    }
}
