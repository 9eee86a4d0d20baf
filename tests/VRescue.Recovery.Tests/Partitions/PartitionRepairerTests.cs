// SPDX-License-Identifier: MIT
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Recovery.Partitions;
using VRescue.Storage;
using VRescue.Storage.Partitions;

namespace VRescue.Recovery.Tests.Partitions;

public sealed class PartitionRepairerTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-repair-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ProposedPartition Part(int index, long start, long size, Guid? type = null) =>
        new(index, start, size, "Linux LVM", type ?? GptPartitionTypes.LinuxLvm, "0x8e", "", Guid.NewGuid(), 0, "test");

    [Fact]
    public void Gpt_writes_read_back_as_a_valid_table_with_both_copies()
    {
        var disk = new byte[64 * MiB];
        var writes = PartitionRepairer.BuildWrites("gpt", [Part(3, 8 * MiB, 48 * MiB)], disk.Length, new byte[512], null, []);
        foreach (var (w, bytes) in writes)
        {
            bytes.CopyTo(disk, w.OffsetBytes);
        }

        var table = PartitionTableReader.Read(new MemoryBlockSource(disk));
        Assert.Equal((PartitionTableKind.Gpt, true, true), (table.Kind, table.PrimaryValid, table.BackupValid));
        var p = Assert.Single(table.Partitions);
        Assert.Equal((3, 8 * MiB, 48 * MiB), (p.Index, p.StartBytes, p.SizeBytes));
        Assert.DoesNotContain(table.Findings, f => f.Code == "GPT_PROTECTIVE_MBR_MISSING");
    }

    [Fact]
    public void Mbr_keeps_boot_code_and_disk_signature()
    {
        var sector0 = new byte[512];
        new Random(1).NextBytes(sector0.AsSpan(0, 444));
        var writes = PartitionRepairer.BuildWrites("mbr", [Part(2, 2 * MiB, 10 * MiB)], 64 * MiB, sector0, null, [1]);
        var mbr = writes[0].Bytes;
        Assert.Equal(sector0[..444], mbr[..444]);
        var t = MbrPartitionTable.Decode(mbr);
        Assert.Equal((byte)0x8e, t.Entries[1].Type);
        Assert.Equal((uint)(2 * MiB / 512), t.Entries[1].FirstLba);
        Assert.Equal("stale GPT header at LBA 1 cleared", writes[1].Write.What);
    }

    [Fact]
    public void Gpt_is_refused_when_a_partition_reaches_into_the_gpt_areas()
    {
        var e = Assert.Throws<PartitionRepairRefusedException>(() => PartitionRepairer.Arrange([Part(1, 1 * MiB, 63 * MiB)], "gpt", 64 * MiB));
        Assert.Equal("REPAIR_GPT_NO_ROOM", e.Code);
        Assert.Single(PartitionRepairer.Arrange([Part(1, 1 * MiB, 63 * MiB)], "mbr", 64 * MiB));
        var five = Enumerable.Range(1, 5).Select(i => Part(i, i * MiB, MiB)).ToList();
        Assert.Equal("REPAIR_MBR_LIMITS", Assert.Throws<PartitionRepairRefusedException>(() => PartitionRepairer.Arrange(five, "mbr", 64 * MiB)).Code);
    }

    [Theory]
    [InlineData(1, 0x000200)]
    [InlineData(2048, 0x002120)]
    [InlineData(100_000_000, 0xFFFFFE)]
    public void Chs_is_what_fdisk_writes(long lba, int expected)
    {
        // 1 = C/H/S 0/0/2; 2048 = 0/32/33; beyond 1023 cylinders fdisk writes 1023/254/63.
        Assert.Equal(expected, PartitionRepairer.Chs(lba));
    }

    [Fact]
    public void Target_that_is_the_source_through_a_link_is_refused()
    {
        var source = Path.Combine(_dir, "disk.img");
        File.WriteAllBytes(source, new byte[4096]);
        var symlink = Path.Combine(_dir, "sym.img");
        File.CreateSymbolicLink(symlink, source);
        Assert.Equal("REPAIR_TARGET_IS_SOURCE", Assert.Throws<PartitionRepairRefusedException>(() => RepairTarget.EnsureNotSource(source, source)).Code);
        Assert.Equal("REPAIR_TARGET_IS_SOURCE", Assert.Throws<PartitionRepairRefusedException>(() => RepairTarget.EnsureNotSource(source, symlink)).Code);
        var copy = Path.Combine(_dir, "copy.img");
        File.WriteAllBytes(copy, new byte[4096]);
        RepairTarget.EnsureNotSource(source, copy);
        RepairTarget.EnsureNotSource(source, Path.Combine(_dir, "new.img"));
    }

    [Fact]
    public void Sparse_copy_has_the_same_bytes_and_holes_where_the_source_is_zero()
    {
        var data = new byte[20 * MiB];
        new Random(3).NextBytes(data.AsSpan(0, 100_000));
        new Random(4).NextBytes(data.AsSpan((int)(17 * MiB), 5000));
        var target = Path.Combine(_dir, "sparse.img");
        var copied = RepairTarget.SparseCopy(new MemoryBlockSource(data), target, default);
        Assert.Equal(data, File.ReadAllBytes(target));
        Assert.True(copied < 1 * MiB, $"copied {copied} bytes of mostly zeros");
        Assert.False(File.Exists(target + ".vrescue-partial"));
    }
}
