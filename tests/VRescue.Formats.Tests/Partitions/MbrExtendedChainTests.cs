// SPDX-License-Identifier: MIT
using VRescue.Formats.Mbr;

namespace VRescue.Formats.Tests.Partitions;

public class MbrExtendedChainTests
{
    private const long DiskSectors = 131072;
    private static readonly MbrPartitionEntry s_extended = new(3, 0, MbrPartitionTypes.Extended, 40960, 90112);

    /// <summary>An EBR: a data entry relative to the EBR, a link relative to the extended partition start.</summary>
    private static byte[] Ebr(uint dataRelLba, uint dataSectors, uint? linkRelLba) =>
        MbrPartitionTableTests.Sector(linkRelLba is { } link
            ? [new(1, 0, MbrPartitionTypes.Linux, dataRelLba, dataSectors), new(2, 0, MbrPartitionTypes.Extended, link, 4096)]
            : [new(1, 0, MbrPartitionTypes.Linux, dataRelLba, dataSectors)]);

    /// <summary>Feeds the walker from an in-memory map of sectors, with a guard so a bug cannot hang the test.</summary>
    private static MbrExtendedChain Walk(Func<long, byte[]> sectorAt)
    {
        var chain = new MbrExtendedChain(s_extended, DiskSectors);
        for (var reads = 0; chain.NextEbrLba is { } lba; reads++)
        {
            Assert.True(reads <= MbrExtendedChain.MaxHops, "walker did not stop");
            chain.Accept(sectorAt(lba));
        }

        return chain;
    }

    [Fact]
    public void Two_logical_partitions_are_numbered_5_and_6_with_absolute_lbas()
    {
        var sectors = new Dictionary<long, byte[]>
        {
            [40960] = Ebr(2048, 4096, 8192),
            [40960 + 8192] = Ebr(2048, 2048, null),
        };
        var chain = Walk(lba => sectors[lba]);

        Assert.Empty(chain.Findings);
        Assert.Equal([5, 6], chain.Partitions.Select(p => p.Index));
        Assert.Equal([43008L, 51200L], chain.Partitions.Select(p => p.FirstLba));
        Assert.Equal(43008L * 512, chain.Partitions[0].StartBytes);
    }

    [Fact]
    public void Ebr_pointing_to_itself_gives_a_loop_finding_and_stops()
    {
        var chain = Walk(_ => Ebr(2048, 2048, 0));
        var f = Assert.Single(chain.Findings);
        Assert.Equal("MBR_EBR_LOOP", f.Code);
        Assert.Equal(40960L * 512 + MbrLayout.EntryOffset(2) + MbrEntryLayout.StartingLbaOffset, f.OffsetBytes);
        Assert.Single(chain.Partitions);
    }

    [Fact]
    public void Two_ebrs_pointing_at_each_other_give_a_loop_finding()
    {
        var sectors = new Dictionary<long, byte[]>
        {
            [40960] = Ebr(2048, 2048, 8192),
            [40960 + 8192] = Ebr(2048, 2048, 0),
        };
        var chain = Walk(lba => sectors[lba]);
        Assert.Equal(["MBR_EBR_LOOP"], chain.Findings.Select(f => f.Code));
        Assert.Equal(2, chain.Partitions.Count);
    }

    [Fact]
    public void Endless_chain_of_fresh_ebrs_stops_at_the_hop_limit()
    {
        // Each EBR links one sector further: never a loop, only the hop limit ends it.
        var chain = Walk(lba => Ebr(0, 0, checked((uint)(lba - 40960 + 1))));
        Assert.Contains(chain.Findings, f => f.Code == "MBR_EBR_HOP_LIMIT");
        Assert.Empty(chain.Partitions);
    }

    [Fact]
    public void Link_beyond_the_disk_is_reported_and_not_read()
    {
        var chain = Walk(lba => lba == 40960 ? Ebr(2048, 2048, 4_000_000) : throw new InvalidOperationException("read " + lba));
        Assert.Contains(chain.Findings, f => f.Code == "MBR_EBR_BEYOND_DISK");
    }

    [Fact]
    public void Ebr_without_signature_ends_the_chain_with_a_finding()
    {
        var chain = Walk(_ => new byte[512]);
        Assert.Equal(["MBR_EBR_NO_SIGNATURE"], chain.Findings.Select(f => f.Code));
        Assert.Equal(40960L * 512 + 510, chain.Findings[0].OffsetBytes);
    }

    [Fact]
    public void Logical_partition_outside_extended_and_overlapping_are_reported()
    {
        var sectors = new Dictionary<long, byte[]>
        {
            [40960] = Ebr(2048, 4096, 4096),
            [40960 + 4096] = Ebr(1, 200_000 - 45057, null),
        };
        var chain = Walk(lba => sectors[lba]);
        var codes = chain.Findings.Select(f => f.Code).Order().ToArray();
        Assert.Equal(["MBR_LOGICAL_BEYOND_DISK", "MBR_LOGICAL_OVERLAP"], codes);
    }

    [Fact]
    public void Random_ebrs_never_throw_or_hang()
    {
        var rng = new Random(7);
        for (var run = 0; run < 200; run++)
        {
            Walk(_ =>
            {
                var s = new byte[512];
                rng.NextBytes(s);
                s[510] = 0x55;
                s[511] = 0xAA;
                s[446 + 16 + 4] = MbrPartitionTypes.Extended;
                return s;
            });
        }
    }
}
