// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;

namespace VRescue.Formats.Tests.Partitions;

public class GptHeaderTests
{
    internal const long DiskSectors = 131072; // 64 MiB

    /// <summary>A header as sgdisk lays one out on a 64 MiB disk: 128 entries of 128 bytes at LBA 2.</summary>
    internal static GptHeader Primary(uint arrayCrc = 0) => new()
    {
        CurrentLba = 1,
        BackupLba = DiskSectors - 1,
        FirstUsableLba = 34,
        LastUsableLba = DiskSectors - 34,
        DiskGuid = new Guid("B9165E7B-36FC-4ACE-800F-891899975347"),
        PartitionEntriesLba = 2,
        NumberOfPartitionEntries = 128,
        SizeOfPartitionEntry = 128,
        PartitionEntryArrayCrc32 = arrayCrc,
    };

    internal static byte[] Block(GptHeader header)
    {
        var block = new byte[GptHeaderLayout.LogicalBlockBytes];
        header.Encode(block);
        return block;
    }

    /// <summary>Sets a field in an encoded header and recomputes the header CRC, as a hostile writer would.</summary>
    private static byte[] WithCrcValid(byte[] block, Action<byte[]> mutate)
    {
        mutate(block);
        var size = (int)Math.Clamp(BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(12)), 92u, 512u);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(16), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(16), Crc32.Ieee(block.AsSpan(0, size)));
        return block;
    }

    private static string[] Codes(byte[] block, long lba = 1) =>
        GptHeader.Decode(block).Validate(lba, DiskSectors).Select(f => f.Code).Order().ToArray();

    [Fact]
    public void Encoded_header_round_trips_with_a_valid_crc_at_spec_offsets()
    {
        var block = Block(Primary(0xDEADBEEF));
        Assert.Equal("EFI PART"u8.ToArray(), block[..8]);
        Assert.Equal(92u, BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(12)));
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(72)));
        // Mixed-endian GUID: the first three groups little-endian (UEFI spec appendix A).
        Assert.Equal(new byte[] { 0x7B, 0x5E, 0x16, 0xB9, 0xFC, 0x36, 0xCE, 0x4A, 0x80, 0x0F }, block[56..66]);

        var h = GptHeader.Decode(block);
        Assert.Equal(Primary(0xDEADBEEF) with { HeaderCrc32 = h.HeaderCrc32, ComputedHeaderCrc32 = h.ComputedHeaderCrc32 }, h);
        Assert.Equal(h.HeaderCrc32, h.ComputedHeaderCrc32);
        Assert.Empty(h.Validate(1, DiskSectors));
        Assert.Equal(new GptEntriesRange(1024, 16384), h.EntriesRange);
    }

    [Fact]
    public void Backup_header_validates_at_the_last_lba()
    {
        var backup = Primary().AsBackup(DiskSectors - 33);
        Assert.Empty(GptHeader.Decode(Block(backup)).Validate(DiskSectors - 1, DiskSectors));
    }

    [Fact]
    public void Crc_mismatch_reports_stored_and_computed_values()
    {
        var block = Block(Primary());
        block[60] ^= 0x01;
        var f = Assert.Single(GptHeader.Decode(block).Validate(1, DiskSectors));
        Assert.Equal("GPT_BAD_HEADER_CRC", f.Code);
        Assert.Equal(16, f.OffsetBytes);
        Assert.Equal(Hex.U32(BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(16))), f.Stored);
        block.AsSpan(16, 4).Clear();
        Assert.Equal(Hex.U32(Crc32.Ieee(block.AsSpan(0, 92))), f.Expected);
    }

    [Fact]
    public void Crc_is_computed_over_header_size_bytes_of_the_raw_block()
    {
        // A header declaring 100 bytes covers 8 reserved bytes a re-encoding would not know about.
        var block = WithCrcValid(Block(Primary()), b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), 100);
            b[95] = 0x42;
        });
        Assert.Empty(GptHeader.Decode(block).Validate(1, DiskSectors));
        block[99] = 1;
        Assert.Equal(["GPT_BAD_HEADER_CRC"], Codes(block));
    }

    [Fact]
    public void Zeroed_block_gives_only_bad_signature() => Assert.Equal(["GPT_BAD_SIGNATURE"], Codes(new byte[512]));

    [Fact]
    public void All_0xFF_block_gives_only_bad_signature() =>
        Assert.Equal(["GPT_BAD_SIGNATURE"], Codes(Enumerable.Repeat((byte)0xFF, 512).ToArray()));

    [Fact]
    public void Huge_entry_count_is_rejected_before_any_allocation()
    {
        var block = WithCrcValid(Block(Primary()), b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(80), 0xFFFFFFFF));
        var h = GptHeader.Decode(block);
        Assert.Null(h.EntriesRange);
        Assert.Equal(["GPT_ENTRY_ARRAY_TOO_LARGE"], Codes(block));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(64u)]
    [InlineData(129u)]
    [InlineData(0x80000000u)]
    public void Entry_size_not_a_multiple_of_128_is_rejected(uint entrySize)
    {
        var block = WithCrcValid(Block(Primary()), b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(84), entrySize));
        Assert.Null(GptHeader.Decode(block).EntriesRange);
        Assert.Contains(entrySize == 0x80000000u ? "GPT_ENTRY_ARRAY_TOO_LARGE" : "GPT_ENTRY_SIZE_INVALID", Codes(block));
    }

    [Fact]
    public void Header_read_at_the_wrong_lba_and_entries_beyond_disk_are_reported()
    {
        var block = WithCrcValid(Block(Primary()), b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(72), DiskSectors - 10));
        Assert.Equal(["GPT_ALTERNATE_LBA_UNEXPECTED", "GPT_ENTRY_ARRAY_BEYOND_DISK", "GPT_WRONG_CURRENT_LBA"], Codes(block, lba: 5));
    }

    [Fact]
    public void Header_size_out_of_range_cannot_be_crc_checked()
    {
        var block = Block(Primary());
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(12), 0xFFFFFFFF);
        var h = GptHeader.Decode(block);
        Assert.Null(h.ComputedHeaderCrc32);
        Assert.Equal(["GPT_BAD_HEADER_SIZE"], Codes(block));
    }

    [Fact]
    public void Crc_valid_garbage_never_throws_and_always_gives_findings()
    {
        var rng = new Random(1234);
        for (var i = 0; i < 5000; i++)
        {
            var block = new byte[512];
            rng.NextBytes(block);
            "EFI PART"u8.CopyTo(block);
            if (i % 2 == 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(12), 92);
            }

            WithCrcValid(block, _ => { });
            var h = GptHeader.Decode(block);
            var findings = h.Validate(rng.NextInt64(-5, long.MaxValue), rng.NextInt64(0, long.MaxValue));
            Assert.NotEmpty(findings);
            if (h.EntriesRange is { } r)
            {
                Assert.InRange(r.LengthBytes, 0, GptHeader.MaxEntryArrayBytes);
                Assert.True(r.OffsetBytes >= 0);
            }
        }
    }

    [Fact]
    public void Entry_array_crc_mismatch_is_a_finding()
    {
        var array = new byte[16384];
        var h = Primary(Crc32.Ieee(array));
        Assert.Null(h.ValidateEntryArrayCrc(array));
        array[5] = 1;
        Assert.Equal("GPT_BAD_ENTRY_ARRAY_CRC", h.ValidateEntryArrayCrc(array)?.Code);
    }

    [Fact]
    public void Parse_throws_corrupt_data_with_the_field()
    {
        var e = Assert.Throws<CorruptDataException>(() => GptHeader.Parse(new byte[512], 1, DiskSectors));
        Assert.Equal("GPT_BAD_SIGNATURE", e.Code);
        Assert.Equal("Signature", e.Field);
    }

    [Fact]
    public void Short_span_is_a_caller_bug() => Assert.Throws<ArgumentException>(() => GptHeader.Decode(new byte[91]));
}
