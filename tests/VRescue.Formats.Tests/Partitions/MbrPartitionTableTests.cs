// SPDX-License-Identifier: MIT
using VRescue.Formats.Mbr;

namespace VRescue.Formats.Tests.Partitions;

public class MbrPartitionTableTests
{
    private const long DiskBytes = 64L * 1024 * 1024;

    internal static byte[] Sector(params MbrPartitionEntry[] entries)
    {
        var sector = new byte[MbrLayout.SectorBytes];
        new MbrPartitionTable(0x12345678, MbrLayout.BootSignatureValue, entries).Encode(sector);
        return sector;
    }

    [Fact]
    public void Encoded_table_decodes_to_the_same_values_and_byte_positions()
    {
        var sector = Sector(
            new MbrPartitionEntry(1, 0x80, MbrPartitionTypes.LinuxLvm, 2048, 20480),
            new MbrPartitionEntry(3, 0x00, MbrPartitionTypes.Extended, 40960, 4096, 0x000102, 0x030405));

        Assert.Equal(0x55, sector[510]);
        Assert.Equal(0xAA, sector[511]);
        Assert.Equal(0x8E, sector[446 + 4]);
        Assert.Equal(new byte[] { 0x78, 0x56, 0x34, 0x12 }, sector[440..444]);

        var table = MbrPartitionTable.Decode(sector);
        Assert.True(table.HasBootSignature);
        Assert.Equal(0x12345678u, table.DiskSignature);
        Assert.Equal([1, 2, 3, 4], table.Entries.Select(e => e.Index));
        var lvm = table.Entries[0];
        Assert.Equal((byte)0x80, lvm.Status);
        Assert.Equal(2048L * 512, lvm.StartBytes);
        Assert.Equal(20480L * 512, lvm.SizeBytes);
        Assert.True(table.Entries[1].IsEmpty);
        Assert.True(table.Entries[2].IsExtended);
        Assert.Equal(0x030405, table.Entries[2].EndingChs);
        Assert.Empty(table.Validate(DiskBytes));
    }

    [Fact]
    public void Missing_boot_signature_is_the_only_finding() =>
        Assert.Equal(["MBR_NO_SIGNATURE"], MbrPartitionTable.Decode(new byte[512]).Validate(DiskBytes).Select(f => f.Code));

    [Fact]
    public void Overlapping_entries_are_reported_with_the_later_entry_offset()
    {
        var table = MbrPartitionTable.Decode(Sector(
            new MbrPartitionEntry(1, 0, MbrPartitionTypes.Linux, 2048, 4096),
            new MbrPartitionEntry(2, 0, MbrPartitionTypes.Linux, 4000, 100)));

        var f = Assert.Single(table.Validate(DiskBytes));
        Assert.Equal("MBR_ENTRIES_OVERLAP", f.Code);
        Assert.Equal(MbrLayout.EntryOffset(2), f.OffsetBytes);
    }

    [Fact]
    public void Entry_beyond_disk_and_bad_status_and_lba0_are_reported()
    {
        var table = MbrPartitionTable.Decode(Sector(
            new MbrPartitionEntry(1, 0x12, MbrPartitionTypes.Linux, 2048, 200_000),
            new MbrPartitionEntry(2, 0, MbrPartitionTypes.Linux, 0, 1)));

        var codes = table.Validate(DiskBytes).Select(f => f.Code).Order().ToArray();
        Assert.Equal(["MBR_BAD_STATUS", "MBR_ENTRY_AT_LBA0", "MBR_ENTRY_BEYOND_DISK"], codes);
    }

    [Fact]
    public void Protective_entry_of_0xFFFFFFFF_sectors_is_not_beyond_a_small_disk()
    {
        var table = MbrPartitionTable.Decode(Sector(new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1, uint.MaxValue)));
        Assert.True(table.IsProtective);
        Assert.False(table.IsHybrid);
        Assert.Empty(table.Validate(DiskBytes));
    }

    [Fact]
    public void Protective_entry_next_to_a_used_entry_is_hybrid()
    {
        var table = MbrPartitionTable.Decode(Sector(
            new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1, 2047),
            new MbrPartitionEntry(2, 0, MbrPartitionTypes.EfiSystem, 2048, 2048)));
        Assert.True(table.IsHybrid);
    }

    [Theory]
    [InlineData(0x8E, "Linux LVM", "0x8e")]
    [InlineData(0x83, "Linux", "0x83")]
    [InlineData(0x82, "Linux swap", "0x82")]
    [InlineData(0xEE, "GPT protective", "0xee")]
    [InlineData(0xEF, "EFI System", "0xef")]
    [InlineData(0x05, "Extended", "0x05")]
    [InlineData(0x0F, "W95 Extended (LBA)", "0x0f")]
    [InlineData(0x85, "Linux extended", "0x85")]
    [InlineData(0x07, "HPFS/NTFS/exFAT", "0x07")]
    [InlineData(0x42, "Unknown", "0x42")]
    public void Type_bytes_have_names_and_codes(byte type, string name, string code)
    {
        Assert.Equal(name, MbrPartitionTypes.Name(type));
        Assert.Equal(code, MbrPartitionTypes.Code(type));
    }

    [Fact]
    public void All_0xFF_sector_decodes_and_validates_without_exceptions()
    {
        var sector = Enumerable.Repeat((byte)0xFF, 512).ToArray();
        var table = MbrPartitionTable.Decode(sector);
        Assert.False(table.HasBootSignature);
        Assert.Equal(uint.MaxValue, table.Entries[0].FirstLba);
        Assert.Contains(table.Validate(DiskBytes), f => f.Code == "MBR_NO_SIGNATURE");
    }

    [Fact]
    public void Random_sectors_with_a_boot_signature_never_throw()
    {
        var rng = new Random(20240601);
        var sector = new byte[512];
        for (var i = 0; i < 2000; i++)
        {
            rng.NextBytes(sector);
            sector[510] = 0x55;
            sector[511] = 0xAA;
            var table = MbrPartitionTable.Decode(sector);
            _ = table.Validate(rng.NextInt64(0, long.MaxValue));
            _ = table.Validate(0);
        }
    }

    [Fact]
    public void Short_span_is_a_caller_bug() =>
        Assert.Throws<ArgumentException>(() => MbrPartitionTable.Decode(new byte[511]));

    [Fact]
    public void Parse_throws_corrupt_data_for_a_missing_signature()
    {
        var e = Assert.Throws<VRescue.Formats.Common.CorruptDataException>(() => MbrPartitionTable.Parse(new byte[512], DiskBytes));
        Assert.Equal("MBR_NO_SIGNATURE", e.Code);
        Assert.Equal(510, e.AbsoluteOffset);
    }
}
