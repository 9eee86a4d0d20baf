// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Diagnostics;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Recovery.Partitions;
using VRescue.Storage;
using static VRescue.Recovery.Tests.Partitions.SyntheticDisk;

namespace VRescue.Recovery.Tests.Partitions;

/// <summary>In-memory disks: where the PV is found, what is proposed, and hostile tables that must not crash or hang.</summary>
public sealed class PartitionScannerTests
{
    /// <summary>A hang guard, not a speed check: bounded work finishes far below it even on a loaded machine.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    private const long DiskBytes = 64 * MiB;
    private const long PvStart = 8 * MiB;
    private const long PvBytes = 48 * MiB;

    private static PartitionScanReport Scan(byte[] disk)
    {
        var before = (byte[])disk.Clone();
        var clock = Stopwatch.StartNew();
        var report = PartitionScanner.Scan(new MemoryBlockSource(disk, "synthetic"));
        Assert.True(clock.Elapsed < HangGuard, "scan of a 64 MiB disk took too long");
        Assert.Equal(before, disk);
        return report;
    }

    private static byte[] DiskWithPv()
    {
        var disk = new byte[DiskBytes];
        WritePv(disk, PvStart, PvBytes);
        return disk;
    }

    private static List<string> Codes(PartitionScanReport r) => r.Findings.Select(f => f.Code).ToList();

    [Fact]
    public void Blank_table_pv_found_by_label_and_sized_by_device_size()
    {
        var r = Scan(DiskWithPv());
        Assert.Equal("none", r.Table);
        var pv = Assert.Single(r.Found, f => f.Kind == "lvm-pv");
        Assert.Equal(PvStart, pv.StartBytes);
        Assert.Equal(PvBytes, pv.SizeBytes);
        Assert.Equal("pv_header.device_size", pv.SizeSource);
        Assert.Equal("found", r.ProposalSource);
        Assert.True(r.NeedsRepair);
        var p = Assert.Single(r.Proposed);
        Assert.Equal((1, PvStart, PvBytes, GptPartitionTypes.LinuxLvm), (p.Index, p.StartBytes, p.SizeBytes, p.GptTypeGuid));
        Assert.Equal("gpt", r.ProposedTable);
        Assert.Contains("PART_PV_WITHOUT_ENTRY", Codes(r));
    }

    [Fact]
    public void Pv_whose_label_is_gone_is_found_by_the_mda_header_start_field()
    {
        var disk = DiskWithPv();
        disk.AsSpan((int)PvStart + 512, 512).Clear();
        var r = Scan(disk);
        var pv = Assert.Single(r.Found, f => f.Kind == "lvm-pv");
        Assert.Equal(PvStart, pv.StartBytes);
        Assert.Contains(pv.Evidence, e => e.Contains("start 4096"));
        Assert.Equal("low", pv.Confidence);
        Assert.Equal(PvStart, Assert.Single(r.Proposed).StartBytes);
    }

    [Fact]
    public void Pv_at_byte_zero_needs_no_table()
    {
        var disk = new byte[DiskBytes];
        WritePv(disk, 0, DiskBytes);
        var r = Scan(disk);
        Assert.Equal("none-needed", r.ProposalSource);
        Assert.Empty(r.Proposed);
        Assert.False(r.NeedsRepair);
    }

    [Fact]
    public void No_pv_anywhere_is_reported_not_guessed()
    {
        var r = Scan(new byte[DiskBytes]);
        Assert.Equal("none", r.ProposalSource);
        Assert.Contains("PART_NO_PV_FOUND", Codes(r));
    }

    [Fact]
    public void Guest_signatures_inside_the_pv_are_nested_not_proposed()
    {
        var disk = DiskWithPv();
        WriteExt(disk, PvStart + (20 * MiB), 1024);
        WritePv(disk, PvStart + (30 * MiB), 4 * MiB, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        var r = Scan(disk);
        Assert.Equal(2, r.Found.Count(f => f.NestedIn is not null));
        Assert.Equal(PvStart, Assert.Single(r.Proposed).StartBytes);
    }

    [Fact]
    public void Valid_backup_gpt_pointing_at_the_pv_is_preferred_over_found_objects()
    {
        var disk = DiskWithPv();
        var sectors = DiskBytes / 512;
        var entries = new[] { Entry(1, 2048, 4095, GptPartitionTypes.BiosBoot), Entry(3, PvStart / 512, ((PvStart + PvBytes) / 512) - 1) };
        WriteGpt(disk, sectors - 1, 1, sectors - 33, entries);
        var r = Scan(disk);
        Assert.Equal("backup-gpt", r.ProposalSource);
        Assert.Equal([1, 3], r.Proposed.Select(p => p.Index));
        Assert.Equal("high", r.Confidence);
    }

    [Fact]
    public void Hostile_gpt_with_overlapping_entries_beyond_the_disk_gets_findings()
    {
        var disk = DiskWithPv();
        var sectors = DiskBytes / 512;
        var entries = new[] { Entry(1, 40, 100000), Entry(2, 50, 60), Entry(3, sectors + 10, sectors * 4), Entry(4, 500, 100) };
        WriteGpt(disk, 1, sectors - 1, 2, entries);
        disk[510] = 0x55;
        disk[511] = 0xAA;
        new MbrPartitionTable(0, 0xAA55, [new MbrPartitionEntry(1, 0, 0xEE, 1, (uint)(sectors - 1))]).Encode(disk);
        var r = Scan(disk);
        Assert.Contains("GPT_ENTRIES_OVERLAP", Codes(r));
        Assert.Contains("GPT_ENTRY_END_BEFORE_START", Codes(r));
        Assert.Equal("found", r.ProposalSource);
        Assert.Equal(PvStart, Assert.Single(r.Proposed).StartBytes);
    }

    [Fact]
    public void Crc_valid_garbage_header_is_judged_not_trusted()
    {
        var disk = DiskWithPv();
        var header = disk.AsSpan(512, 512);
        new Random(7).NextBytes(header);
        "EFI PART"u8.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 92);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], Crc32.Ieee(header[..92]));
        var r = Scan(disk);
        Assert.Equal("gpt", r.Table);
        Assert.False(r.PrimaryValid);
        Assert.Equal(PvStart, Assert.Single(r.Proposed).StartBytes);
    }

    [Fact]
    public void Ebr_loop_ends_with_a_finding()
    {
        var disk = DiskWithPv();
        var extended = new MbrPartitionEntry(1, 0, MbrPartitionTypes.Extended, 2048, 8192);
        new MbrPartitionTable(0x1234, 0xAA55, [extended]).Encode(disk);
        // The EBR links back to itself.
        var ebr = new MbrPartitionTable(0, 0xAA55, [new MbrPartitionEntry(1, 0, 0x83, 1, 100), new MbrPartitionEntry(2, 0, 0x05, 0, 8192)]);
        ebr.Encode(disk.AsSpan(2048 * 512, 512));
        var r = Scan(disk);
        Assert.Contains("MBR_EBR_LOOP", Codes(r));
        Assert.Equal(PvStart, Assert.Single(r.Proposed, p => p.GptTypeGuid == GptPartitionTypes.LinuxLvm).StartBytes);
    }

    [Fact]
    public void Random_flips_in_the_table_sectors_never_crash()
    {
        var rng = new Random(42);
        var sectors = DiskBytes / 512;
        for (var round = 0; round < 8; round++)
        {
            var disk = DiskWithPv();
            WriteGpt(disk, 1, sectors - 1, 2, [Entry(1, PvStart / 512, ((PvStart + PvBytes) / 512) - 1)]);
            for (var i = 0; i < 16; i++)
            {
                disk[rng.Next(0, 34 * 512)] ^= (byte)(1 << rng.Next(8));
            }

            var r = Scan(disk);
            Assert.Contains(r.Found, f => f.Kind == "lvm-pv" && f.StartBytes == PvStart);
        }
    }

    [Theory]
    [InlineData("/dev/sda3", 3)]
    [InlineData("/dev/xvdb12", 12)]
    [InlineData("/dev/nvme0n1p3", 3)]
    [InlineData("/dev/loop7p2", 2)]
    [InlineData("/dev/disk/by-id/scsi-3600508b1001c7e172160824d7b204c3e-part3", 3)]
    [InlineData("/dev/loop0", null)]
    [InlineData("/dev/sda", null)]
    [InlineData("/dev/mapper/foo", null)]
    public void Partition_number_is_read_from_the_device_lvm_recorded(string device, int? expected) =>
        Assert.Equal(expected, PartitionEvidence.PartitionNumberFromDevice(device));
}
