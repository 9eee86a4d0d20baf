// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Vhd;

public class VhdFormatTests
{
    public static TheoryData<string> SampleNames => new(Samples.VhdUtilNames);

    private static byte[] ReadAt(string path, long offset, int length)
    {
        using var f = File.OpenHandle(path);
        var buffer = new byte[length];
        RandomAccess.Read(f, buffer, offset);
        return buffer;
    }

    private static byte[] EndFooterBytes(string path) => ReadAt(path, new FileInfo(path).Length - 512, 512);

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Footer_of_every_vhd_util_sample_decodes_to_its_facts(string name)
    {
        var facts = Samples.VhdUtilFacts(name);
        var footer = VhdFooter.Parse(EndFooterBytes(Samples.VhdUtilPath(name)));

        Assert.Empty(footer.Validate());
        Assert.Equal(facts.GetProperty("disk_type").GetString(), footer.DiskType.ToString().ToLowerInvariant());
        Assert.Equal(facts.GetProperty("virtual_size").GetUInt64(), footer.CurrentSizeBytes);
        Assert.Equal(Guid.Parse(facts.GetProperty("footer_uuid").GetString()!), footer.Uuid);
        Assert.Equal(facts.GetProperty("hidden").GetInt32(), footer.Hidden);
        Assert.Equal(facts.GetProperty("creator").GetString(), $"{footer.CreatorApplication.TrimEnd('\0')} {footer.CreatorVersion >> 16}.{footer.CreatorVersion & 0xFFFF}");
        Assert.Equal(footer.ComputedChecksum, footer.StoredChecksum);
        Assert.True(footer.Timestamp.Year >= 2000);
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Footer_encode_reproduces_the_sample_bytes(string name)
    {
        var raw = EndFooterBytes(Samples.VhdUtilPath(name));
        var encoded = new byte[512];
        VhdFooter.Decode(raw).Encode(encoded);
        Assert.Equal(raw, encoded);
    }

    [Theory]
    [InlineData("dynamic.vhd")]
    [InlineData("chain-base.vhd")]
    [InlineData("chain-mid.vhd")]
    [InlineData("chain-leaf.vhd")]
    public void Dynamic_header_of_sample_decodes_to_its_facts_and_reencodes(string name)
    {
        var facts = Samples.VhdUtilFacts(name);
        var path = Samples.VhdUtilPath(name);
        var footer = VhdFooter.Parse(EndFooterBytes(path));
        var raw = ReadAt(path, (long)footer.DataOffsetBytes, 1024);
        var header = VhdDynamicHeader.Parse(raw);

        Assert.Empty(header.Validate());
        Assert.Equal(facts.GetProperty("max_bat_entries").GetUInt32(), header.MaxTableEntries);
        Assert.Equal(facts.GetProperty("table_offset").GetUInt64(), header.TableOffsetBytes);
        Assert.Equal(VhdDynamicHeader.DefaultBlockSizeBytes, header.BlockSizeBytes);
        Assert.Equal(1, header.BitmapSizeSectors);
        if (facts.TryGetProperty("parent_footer_uuid", out var parent))
        {
            Assert.Equal(Guid.Parse(parent.GetString()!), header.ParentUuid);
            Assert.Equal(facts.GetProperty("parent_name").GetString(), header.ParentUnicodeName);
            var expected = facts.GetProperty("parent_locators").EnumerateArray().ToArray();
            var used = header.ParentLocators.Where(l => l.IsUsed).ToArray();
            Assert.Equal(expected.Length, used.Length);
            for (var i = 0; i < used.Length; i++)
            {
                Assert.Equal(expected[i].GetProperty("code").GetString(), used[i].CodeText);
                Assert.Equal(expected[i].GetProperty("data_offset").GetUInt64(), used[i].DataOffsetBytes);
                var text = used[i].DecodeText(ReadAt(path, (long)used[i].DataOffsetBytes, (int)used[i].DataLength));
                Assert.Equal(expected[i].GetProperty("text").GetString(), text);
                Assert.Equal(512, used[i].DataSpaceBytes);
            }
        }
        else
        {
            Assert.Equal(Guid.Empty, header.ParentUuid);
            Assert.All(header.ParentLocators, l => Assert.False(l.IsUsed));
        }

        var encoded = new byte[1024];
        header.Encode(encoded);
        Assert.Equal(raw, encoded);
    }

    [Theory]
    [InlineData("dynamic.vhd")]
    [InlineData("chain-base.vhd")]
    [InlineData("chain-mid.vhd")]
    [InlineData("chain-leaf.vhd")]
    public void Bat_and_batmap_of_sample_decode_to_its_facts(string name)
    {
        var facts = Samples.VhdUtilFacts(name);
        var path = Samples.VhdUtilPath(name);
        var footer = VhdFooter.Parse(EndFooterBytes(path));
        var header = VhdDynamicHeader.Parse(ReadAt(path, (long)footer.DataOffsetBytes, 1024));
        var used = header.UsedTableEntries(footer.CurrentSizeBytes);
        Assert.Equal(16, used);
        var bat = VhdBat.Decode(ReadAt(path, (long)header.TableOffsetBytes, (int)used * 4), (long)header.TableOffsetBytes);

        var allocated = facts.GetProperty("allocated_blocks").EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value);
        Assert.Equal(allocated.Count, bat.AllocatedCount);
        foreach (var (block, fact) in allocated)
        {
            Assert.Equal(fact.GetProperty("bat_sector").GetUInt32(), bat[block]);
            var bitmap = ReadAt(path, bat[block] * 512L, 512);
            Assert.Equal(fact.GetProperty("bitmap_sectors_set").GetInt32(), VhdBitmap.CountSet(bitmap, 4096));
        }

        var batmapFacts = facts.GetProperty("batmap");
        var headerOffset = VhdBatmapHeader.HeaderOffsetBytes(header);
        Assert.Equal(0x400600, headerOffset);
        var batmapHeader = VhdBatmapHeader.Decode(ReadAt(path, headerOffset, 512));
        Assert.Empty(batmapHeader.Validate());
        Assert.Equal(batmapFacts.GetProperty("offset").GetUInt64(), batmapHeader.BatmapOffsetBytes);
        Assert.Equal(batmapFacts.GetProperty("size_sectors").GetUInt32(), batmapHeader.BatmapSizeSectors);
        Assert.Equal(VhdBatmapHeader.Version1_2, batmapHeader.Version);
        var map = ReadAt(path, (long)batmapHeader.BatmapOffsetBytes, VhdBatmapHeader.ChecksumLengthBytes(footer.CurrentSizeBytes));
        Assert.Empty(batmapHeader.ValidateMap(map, footer.CurrentSizeBytes));
        var full = Enumerable.Range(0, (int)used).Where(b => VhdBitmap.IsSet(map, b)).ToArray();
        Assert.Equal(batmapFacts.GetProperty("full_blocks").EnumerateArray().Select(e => e.GetInt32()).ToArray(), full);

        var encodedHeader = new byte[512];
        batmapHeader.Encode(encodedHeader, map, footer.CurrentSizeBytes);
        Assert.Equal(ReadAt(path, headerOffset, 512), encodedHeader);
    }

    [Fact]
    public void Batmap_checksum_covers_only_the_sectors_for_the_virtual_size()
    {
        Assert.Equal(512, VhdBatmapHeader.ChecksumLengthBytes(32UL << 20));
        Assert.Equal(512, VhdBatmapHeader.ChecksumLengthBytes(2UL << 20));
        Assert.Equal(128 * 1024, VhdBatmapHeader.ChecksumLengthBytes(2UL << 40));
        var map = new byte[1024];
        map[600] = 0xFF; // beyond the first sector: not covered for a 32 MiB disk
        var header = new VhdBatmapHeader { BatmapOffsetBytes = 0x400800, BatmapSizeSectors = 2 };
        Assert.Equal(~0u, header.ComputeChecksum(map, 32UL << 20));
        var signed = header with { Version = VhdBatmapHeader.Version1_1 };
        map[0] = 0x80;
        Assert.Equal(~unchecked((uint)-128), signed.ComputeChecksum(map, 32UL << 20));
    }

    [Fact]
    public void Sector_bitmap_is_msb_first()
    {
        byte[] map = [0b1000_0001, 0xFF, 0x00];
        Assert.True(VhdBitmap.IsSet(map, 0));
        Assert.False(VhdBitmap.IsSet(map, 1));
        Assert.True(VhdBitmap.IsSet(map, 7));
        Assert.Equal(10, VhdBitmap.CountSet(map, 24));
        Assert.Equal(1, VhdBitmap.RunEnd(map, 0, 24));
        Assert.Equal(16, VhdBitmap.RunEnd(map, 7, 24));
        Assert.Equal(24, VhdBitmap.RunEnd(map, 16, 24));
        Assert.False(VhdBitmap.IsSet(map, 1000));
    }

    private static byte[] ValidFooter(VhdDiskType type = VhdDiskType.Dynamic)
    {
        var bytes = new byte[512];
        new VhdFooter { DiskType = type, CurrentSizeBytes = 32 << 20, DataOffsetBytes = 512, Uuid = Guid.NewGuid() }.Encode(bytes);
        return bytes;
    }

    [Fact]
    public void Footer_with_wrong_checksum_is_reported_with_stored_and_computed()
    {
        var bytes = ValidFooter();
        bytes[VhdFooterLayout.Timestamp] ^= 1;
        var f = Assert.Single(VhdFooter.Decode(bytes).Validate());
        Assert.Equal("VHD_FOOTER_CHECKSUM", f.Code);
        Assert.Equal(VhdFooterLayout.Checksum, f.OffsetBytes);
        Assert.NotEqual(f.Stored, f.Expected);
        var e = Assert.Throws<CorruptDataException>(() => VhdFooter.Parse(bytes));
        Assert.Equal("VHD_FOOTER_CHECKSUM", e.Code);
    }

    [Fact]
    public void Killed_zeroed_poisoned_and_bad_cookie_footers_have_their_own_codes()
    {
        Assert.Equal("VHD_FOOTER_KILLED", VhdFooter.Decode(Enumerable.Repeat((byte)0xC7, 512).ToArray()).Validate().Single().Code);
        Assert.True(VhdFooter.Decode(Enumerable.Repeat((byte)0xC7, 512).ToArray()).IsKilled);
        Assert.Equal("VHD_FOOTER_ZEROED", VhdFooter.Decode(new byte[512]).Validate().Single().Code);

        var poisoned = new byte[512];
        new VhdFooter { Cookie = "v_poison", DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = 2 << 20, DataOffsetBytes = 512 }.Encode(poisoned);
        var p = VhdFooter.Decode(poisoned);
        Assert.True(p.IsPoisoned);
        Assert.Equal("VHD_FOOTER_POISONED", Assert.Single(p.Validate()).Code);

        var bad = ValidFooter();
        "garbage!"u8.CopyTo(bad);
        Assert.Equal("VHD_FOOTER_COOKIE", VhdFooter.Decode(bad).Validate().Single().Code);
    }

    [Fact]
    public void Hidden_flag_checksum_quirk_of_early_td_util_is_a_warning()
    {
        var bytes = ValidFooter();
        bytes[VhdFooterLayout.Hidden] = 1; // hidden set without re-checksumming
        var f = Assert.Single(VhdFooter.Decode(bytes).Validate());
        Assert.Equal("VHD_FOOTER_CHECKSUM_HIDDEN", f.Code);
        Assert.Equal(Severity.Warning, f.Severity);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0x80000000u)]
    [InlineData(3u << 20)]
    [InlineData(256u)]
    public void Unusable_block_size_is_an_error(uint blockSizeBytes)
    {
        var bytes = new byte[1024];
        new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = 16, BlockSizeBytes = blockSizeBytes }.Encode(bytes);
        var header = VhdDynamicHeader.Decode(bytes);
        var f = Assert.Single(header.Validate());
        Assert.Equal("VHD_BLOCK_SIZE", f.Code);
        Assert.Equal(VhdDynamicHeaderLayout.BlockSize, f.OffsetBytes);
        Assert.Equal(0, header.UsedTableEntries(32 << 20));
    }

    [Theory]
    [InlineData(ulong.MaxValue, 8_796_093_022_208L)]
    [InlineData((32ul << 20) + 1, 17L)]
    [InlineData(32ul << 20, 16L)]
    [InlineData(0ul, 0L)]
    public void Used_table_entries_round_up_without_overflow(ulong currentSizeBytes, long expected)
    {
        // ceil(2^64-1 / 2 MiB) = 2^43; the old (size + block - 1) / block overflowed (checked) for a hostile current size.
        var header = new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = 16 };
        Assert.Equal(expected, header.UsedTableEntries(currentSizeBytes));
    }

    [Fact]
    public void Header_with_wrong_checksum_is_reported()
    {
        var bytes = new byte[1024];
        new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = 16 }.Encode(bytes);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(VhdDynamicHeaderLayout.MaxTableEntries), 17);
        Assert.Equal("VHD_HEADER_CHECKSUM", Assert.Single(VhdDynamicHeader.Decode(bytes).Validate()).Code);
        Assert.Throws<CorruptDataException>(() => VhdDynamicHeader.Parse(bytes));
    }

    [Fact]
    public void Bat_entries_into_metadata_past_the_end_and_overlapping_are_reported_with_absolute_offsets()
    {
        const long tableOffset = 1536;
        var bat = VhdBat.FromEntries([1, 8455, 8456, 0xFFFFFFFF, 0xFFFFFFF0], tableOffset);
        var metadata = new[] { new VhdMetadataRange("dynamic header", 512, 1024), new VhdMetadataRange("BAT", 1536, 512) };
        var findings = bat.Validate(4097, 64L << 20, metadata);

        Assert.Contains(findings, f => f.Code == "VHD_BAT_ENTRY_IN_METADATA" && f.OffsetBytes == tableOffset);
        Assert.Contains(findings, f => f.Code == "VHD_BAT_ENTRY_OVERLAP" && f.OffsetBytes == tableOffset + 8);
        Assert.Contains(findings, f => f.Code == "VHD_BAT_ENTRY_OUT_OF_RANGE" && f.OffsetBytes == tableOffset + 16);
        Assert.Equal(4, bat.AllocatedCount);
        Assert.False(bat.IsAllocated(3));
        Assert.False(bat.IsAllocated(100));
    }

    [Fact]
    public void Bat_findings_are_capped_for_hostile_tables()
    {
        var bat = VhdBat.FromEntries(Enumerable.Repeat(1u, 100_000), 1536);
        var findings = bat.Validate(4097, 1L << 30, [new VhdMetadataRange("header", 0, 4096)]);
        Assert.True(findings.Count <= VhdBat.MaxFindings + 1);
        Assert.Equal("VHD_BAT_FINDINGS_TRUNCATED", findings[^1].Code);
    }

    [Fact]
    public void Random_flips_never_throw_from_decode_or_validate()
    {
        var rng = new Random(20240613);
        var path = Samples.VhdUtilPath("chain-leaf.vhd");
        var footer = EndFooterBytes(path);
        var header = ReadAt(path, 512, 1024);
        var batmap = ReadAt(path, 0x400600, 512);
        for (var round = 0; round < 2000; round++)
        {
            var f = (byte[])footer.Clone();
            var h = (byte[])header.Clone();
            var m = (byte[])batmap.Clone();
            for (var k = 0; k < 1 + rng.Next(8); k++)
            {
                f[rng.Next(f.Length)] ^= (byte)(1 << rng.Next(8));
                h[rng.Next(h.Length)] ^= (byte)(1 << rng.Next(8));
                m[rng.Next(m.Length)] ^= (byte)(1 << rng.Next(8));
            }

            var decodedFooter = VhdFooter.Decode(f);
            _ = decodedFooter.Validate();
            _ = decodedFooter.Timestamp;
            var decodedHeader = VhdDynamicHeader.Decode(h);
            _ = decodedHeader.Validate();
            _ = decodedHeader.UsedTableEntries(decodedFooter.CurrentSizeBytes);
            _ = decodedHeader.TableSizeBytes;
            _ = decodedHeader.ParentLocators.Select(l => (l.CodeText, l.DataSpaceBytes)).ToArray();
            _ = VhdBatmapHeader.Decode(m).Validate();
        }
    }

    [Fact]
    public void Locator_text_decodes_macx_as_utf8_and_w2ku_as_utf16le()
    {
        var mac = new VhdParentLocator(VhdParentLocator.CodeMacX, 512, 0, 0, 0);
        var w2 = new VhdParentLocator(VhdParentLocator.CodeW2ku, 1, 0, 0, 0);
        Assert.Equal("MacX", mac.CodeText);
        Assert.Equal("W2ku", w2.CodeText);
        Assert.Equal(512, w2.DataSpaceBytes);
        Assert.Equal("file://./VG_XenStorage--a-VHD--b", mac.DecodeText(VhdParentLocator.EncodeText(mac.Code, "file://./VG_XenStorage--a-VHD--b")));
        Assert.Equal(@".\VG_XenStorage--a-VHD--b", w2.DecodeText([.. VhdParentLocator.EncodeText(w2.Code, @".\VG_XenStorage--a-VHD--b"), 0, 0, 7]));
        Assert.Null(new VhdParentLocator(0x41424344, 0, 0, 0, 0).DecodeText([1, 2]));
    }

    [Fact]
    public void Uuid_is_read_big_endian()
    {
        var bytes = ValidFooter();
        Convert.FromHexString("d73049fb33694ade8d25d3a3dce323ab").CopyTo(bytes, VhdFooterLayout.Uuid);
        Assert.Equal(Guid.Parse("d73049fb-3369-4ade-8d25-d3a3dce323ab"), VhdFooter.Decode(bytes).Uuid);
    }
}
