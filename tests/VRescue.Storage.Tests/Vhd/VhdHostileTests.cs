// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage.Vhd;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Vhd;

public class VhdHostileTests
{
    [Fact]
    public void Hand_built_dynamic_vhd_reads_back()
    {
        var image = VhdImage.Open(new MemoryBlockSource(VhdTestSupport.BuildDynamic(4, [2, 0])));
        Assert.Empty(image.Findings);
        var content = new VhdBlockSource(image);
        var buffer = new byte[8 << 20];
        content.ReadExactlyAt(0, buffer);
        Assert.Equal(1, buffer[0]);
        Assert.Equal(0, buffer[2 << 20]);
        Assert.Equal(3, buffer[(4 << 20) + 5]);
    }

    [Fact]
    public void Max_bat_entries_of_all_ones_reads_only_the_entries_within_the_virtual_size()
    {
        var image = VhdImage.Open(new MemoryBlockSource(VhdTestSupport.BuildDynamic(4, [0], headerEdit: h => h with { MaxTableEntries = 0xFFFFFFFF })));
        Assert.Equal(4, image.Bat!.Count);
        Assert.Contains(image.Findings, f => f.Code == "VHD_MAX_TABLE_ENTRIES" && f.OffsetBytes == 512 + VhdDynamicHeaderLayout.MaxTableEntries);
        Assert.True(image.CanRead);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(0x80000000u)]
    public void Absurd_block_size_is_a_finding_and_reading_fails_with_corrupt_data(uint blockSizeBytes)
    {
        var image = VhdImage.Open(new MemoryBlockSource(VhdTestSupport.BuildDynamic(4, [0], headerEdit: h => h with { BlockSizeBytes = blockSizeBytes })));
        var f = Assert.Single(image.Findings, x => x.Code == "VHD_BLOCK_SIZE");
        Assert.Equal(512 + VhdDynamicHeaderLayout.BlockSize, f.OffsetBytes);
        Assert.False(image.CanRead);
        Assert.Null(image.Bat);
        Assert.Throws<CorruptDataException>(() => new VhdBlockSource(image));
    }

    [Fact]
    public void Huge_virtual_size_with_small_blocks_is_refused_before_allocating()
    {
        var image = VhdImage.Open(new MemoryBlockSource(VhdTestSupport.BuildDynamic(4, [0],
            footerEdit: f => f with { CurrentSizeBytes = 32UL << 40 }, headerEdit: h => h with { BlockSizeBytes = 512, MaxTableEntries = 0xFFFFFFFF })));
        Assert.Contains(image.Findings, f => f.Code == "VHD_BAT_TOO_LARGE");
        Assert.False(image.CanRead);
    }

    [Fact]
    public void Bat_pointing_into_the_header_and_overlapping_blocks_are_findings()
    {
        var bytes = VhdTestSupport.BuildDynamic(4, [0, 1], batEdit: e => { e[2] = 1; e[3] = e[0] + 100; });
        var image = VhdImage.Open(new MemoryBlockSource(bytes));
        Assert.Contains(image.Findings, f => f.Code == "VHD_BAT_ENTRY_IN_METADATA" && f.OffsetBytes == 1536 + 8);
        Assert.Contains(image.Findings, f => f.Code == "VHD_BAT_ENTRY_OVERLAP");
        // Still readable for recovery: the engineer decides.
        Assert.True(image.CanRead);
        _ = VhdTestSupport.Sha256(new VhdBlockSource(image));
    }

    [Fact]
    public void Bat_entry_past_the_end_is_a_finding_and_reads_as_zeros()
    {
        var bytes = VhdTestSupport.BuildDynamic(4, [0], batEdit: e => e[1] = 0xFFFFFF00);
        var image = VhdImage.Open(new MemoryBlockSource(bytes));
        Assert.Contains(image.Findings, f => f.Code == "VHD_BAT_ENTRY_OUT_OF_RANGE" && f.OffsetBytes == 1536 + 4);
        var buffer = new byte[4096];
        new VhdBlockSource(image).ReadExactlyAt(2 << 20, buffer);
        Assert.All(buffer, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Wrong_header_checksum_is_an_error_finding_with_absolute_offset()
    {
        var bytes = VhdTestSupport.BuildDynamic(4, [0]);
        bytes[512 + VhdDynamicHeaderLayout.Reserved2] ^= 1;
        var image = VhdImage.Open(new MemoryBlockSource(bytes));
        var f = Assert.Single(image.Findings);
        Assert.Equal("VHD_HEADER_CHECKSUM", f.Code);
        Assert.Equal(512 + VhdDynamicHeaderLayout.Checksum, f.OffsetBytes);
    }

    [Fact]
    public void Zeroed_end_footer_falls_back_to_the_copy_and_no_footer_at_all_is_a_finding()
    {
        var bytes = VhdTestSupport.BuildDynamic(2, [1]);
        bytes.AsSpan(bytes.Length - 512).Clear();
        var image = VhdImage.Open(new MemoryBlockSource(bytes));
        Assert.Equal(VhdFooterSource.Copy, image.Info.FooterSource);
        Assert.Equal("VHD_FOOTER_ZEROED", Assert.Single(image.Findings).Code);

        bytes.AsSpan(0, 512).Clear();
        image = VhdImage.Open(new MemoryBlockSource(bytes));
        Assert.Equal(VhdFooterSource.None, image.Info.FooterSource);
        Assert.Contains(image.Findings, f => f.Code == "VHD_FOOTER_MISSING");
        Assert.Throws<CorruptDataException>(() => new VhdBlockSource(image));

        Assert.Contains(VhdImage.Open(new MemoryBlockSource(new byte[100])).Findings, f => f.Code == "VHD_TOO_SMALL");
    }

    [Theory]
    [InlineData(609)]
    [InlineData(1000)]
    public void Image_cut_inside_the_dynamic_header_says_the_source_is_too_short(int length)
    {
        // Fuzz find (vhd-util dynamic.vhd cut at 609 bytes): the finding said "expected <= -415" for data_offset.
        var cut = VhdTestSupport.BuildDynamic(4, [0, 3]).AsSpan(0, length).ToArray();
        var f = Assert.Single(VhdImage.Open(new MemoryBlockSource(cut)).Findings, f => f.Code == "VHD_HEADER_OFFSET");
        Assert.Contains($"the source is {length} bytes, too short", f.Message, StringComparison.Ordinal);
        Assert.Equal("a source of at least 1536 bytes", f.Expected);
        Assert.Equal("512", f.Stored);
    }

    [Fact]
    public void Truncated_image_gives_findings_not_exceptions()
    {
        var full = VhdTestSupport.BuildDynamic(4, [0, 3]);
        foreach (var length in new[] { 0, 511, 512, 1000, 1600, 2048, 4096, 3 << 20 })
        {
            var cut = full.AsSpan(0, length).ToArray();
            var image = VhdImage.Open(new MemoryBlockSource(cut));
            Assert.NotEmpty(image.Findings);
            if (image.CanRead)
            {
                _ = VhdTestSupport.Sha256(new VhdBlockSource(image));
            }
        }
    }

    [Fact]
    public void Random_flips_on_a_sample_give_findings_or_corrupt_data_never_hangs()
    {
        var original = File.ReadAllBytes(Samples.VhdUtilPath("dynamic.vhd"));
        var rng = new Random(424242);
        int[] hot = [0, 512, 1536, 0x400600, 0x400800, 8455 * 512, original.Length - 512];
        var bytes = (byte[])original.Clone();
        var flipped = new List<int>();
        for (var round = 0; round < 300; round++)
        {
            foreach (var at in flipped)
            {
                bytes[at] = original[at];
            }

            flipped.Clear();
            for (var k = 0; k < 1 + rng.Next(6); k++)
            {
                var at = hot[rng.Next(hot.Length)] + rng.Next(96);
                bytes[at] ^= (byte)(1 << rng.Next(8));
                flipped.Add(at);
            }

            var image = VhdImage.Open(new MemoryBlockSource(bytes));
            if (!image.CanRead)
            {
                Assert.Throws<CorruptDataException>(() => new VhdBlockSource(image));
                continue;
            }

            var content = new VhdBlockSource(image);
            var buffer = new byte[1 << 20];
            content.ReadAt(rng.NextInt64(Math.Max(1, content.LengthBytes)), buffer);
        }
    }

    private static (MemoryBlockSource A, MemoryBlockSource B, Guid UuidA, Guid UuidB) CyclicPair(bool self)
    {
        var uuidA = Guid.NewGuid();
        var uuidB = self ? uuidA : Guid.NewGuid();
        MemoryBlockSource Diff(Guid uuid, Guid parent, string name) => new(VhdTestSupport.BuildDynamic(2, [0],
            footerEdit: f => f with { DiskType = VhdDiskType.Differencing, Uuid = uuid },
            headerEdit: h => h with { ParentUuid = parent, ParentUnicodeName = name }), name);
        return (Diff(uuidA, uuidB, "a.vhd"), Diff(uuidB, uuidA, "b.vhd"), uuidA, uuidB);
    }

    [Fact]
    public void Parent_cycle_is_a_finding_and_content_throws_corrupt_data()
    {
        var (a, b, uuidA, uuidB) = CyclicPair(self: false);
        var calls = 0;
        var chain = VhdChain.Open(a, uuid => { calls++; return uuid == uuidA ? a : uuid == uuidB ? b : null; });
        Assert.Contains(chain.Findings, f => f.Code == "VHD_CHAIN_CYCLE");
        Assert.Null(chain.Content);
        Assert.Equal("VHD_CHAIN_CYCLE", Assert.Throws<CorruptDataException>(chain.OpenContent).Code);
        Assert.True(calls <= 2);
    }

    [Fact]
    public void Self_parent_is_a_cycle()
    {
        var (a, _, uuidA, _) = CyclicPair(self: true);
        var chain = VhdChain.Open(a, uuid => uuid == uuidA ? a : null);
        Assert.Contains(chain.Findings, f => f.Code == "VHD_CHAIN_CYCLE");
        Assert.Throws<CorruptDataException>(chain.OpenContent);
    }

    [Fact]
    public void Resolver_that_always_returns_a_new_vhd_hits_the_hop_limit()
    {
        MemoryBlockSource Next(Guid uuid) => new(VhdTestSupport.BuildDynamic(1, [],
            footerEdit: f => f with { DiskType = VhdDiskType.Differencing, Uuid = uuid },
            headerEdit: h => h with { ParentUuid = Guid.NewGuid() }));
        var chain = VhdChain.Open(Next(Guid.NewGuid()), Next, maxDepth: 10);
        Assert.Contains(chain.Findings, f => f.Code == "VHD_CHAIN_TOO_DEEP");
        Assert.Equal(10, chain.Images.Count);
    }

    [Fact]
    public void Missing_parent_and_wrong_parent_uuid_are_findings()
    {
        var (a, b, _, _) = CyclicPair(self: false);
        Assert.Contains(VhdChain.Open(a, _ => null).Findings, f => f.Code == "VHD_PARENT_NOT_FOUND");
        Assert.Contains(VhdChain.Open(a, _ => a).Findings, f => f.Code == "VHD_PARENT_UUID_MISMATCH");
        _ = b;
    }
}
