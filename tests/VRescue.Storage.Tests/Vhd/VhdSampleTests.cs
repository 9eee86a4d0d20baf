// SPDX-License-Identifier: MIT
using VRescue.Formats.Vhd;
using VRescue.Storage.Vhd;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Vhd;

public class VhdSampleTests
{
    public static TheoryData<string> SampleNames => new(Samples.VhdUtilNames);

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Every_vhd_util_sample_opens_with_exactly_its_facts(string name)
    {
        var facts = Samples.VhdUtilFacts(name);
        var path = Samples.VhdUtilPath(name);
        using var file = FileBlockSource.Open(path);
        var image = VhdImage.Open(file);
        var info = image.Info;

        Assert.True(image.CanRead);
        Assert.Empty(info.Findings);
        Assert.Equal(VhdFooterSource.End, info.FooterSource);
        Assert.Equal(facts.GetProperty("file_size").GetInt64(), file.LengthBytes);
        Assert.Equal(facts.GetProperty("disk_type").GetString(), info.Footer!.DiskType.ToString().ToLowerInvariant());
        Assert.Equal(facts.GetProperty("virtual_size").GetInt64(), image.VirtualSizeBytes);
        Assert.Equal(Guid.Parse(facts.GetProperty("footer_uuid").GetString()!), info.Footer.Uuid);
        Assert.Equal(facts.GetProperty("hidden").GetInt32(), info.Footer.Hidden);
        if (info.Footer.DiskType == VhdDiskType.Fixed)
        {
            Assert.Null(info.Header);
            return;
        }

        Assert.Equal(facts.GetProperty("max_bat_entries").GetUInt32(), info.Header!.MaxTableEntries);
        Assert.Equal(facts.GetProperty("table_offset").GetUInt64(), info.Header.TableOffsetBytes);
        var allocated = facts.GetProperty("allocated_blocks").EnumerateObject().ToDictionary(p => long.Parse(p.Name), p => p.Value);
        Assert.Equal(allocated.Count, info.AllocatedBlockCount);
        Assert.Equal(16, image.Bat!.Count);
        foreach (var (block, fact) in allocated)
        {
            Assert.Equal(fact.GetProperty("bat_sector").GetInt64() * 512, image.BitmapOffsetBytes(block));
            Assert.Equal(fact.GetProperty("bitmap_sectors_set").GetInt32(), VhdBitmap.CountSet(image.ReadSectorBitmap(block), 4096));
        }

        var batmap = facts.GetProperty("batmap");
        Assert.True(info.BatmapUsable);
        Assert.Equal(batmap.GetProperty("offset").GetUInt64(), info.BatmapHeader!.BatmapOffsetBytes);
        Assert.Equal(batmap.GetProperty("size_sectors").GetUInt32(), info.BatmapHeader.BatmapSizeSectors);
        var full = batmap.GetProperty("full_blocks").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal(full, Enumerable.Range(0, 16).Select(b => (long)b).Where(image.IsBlockFull).ToArray());
        Assert.Equal(full.Length, info.BatmapFullBlockCount);

        if (facts.TryGetProperty("parent_footer_uuid", out var parent))
        {
            Assert.Equal(Guid.Parse(parent.GetString()!), info.ParentUuid);
            Assert.Equal(facts.GetProperty("parent_name").GetString(), info.ParentName);
            var expected = facts.GetProperty("parent_locators").EnumerateArray()
                .Select(l => (l.GetProperty("code").GetString()!, l.GetProperty("data_offset").GetUInt64(), l.GetProperty("text").GetString())).ToArray();
            Assert.Equal(expected, info.Locators.Select(l => (l.Entry.CodeText, l.Entry.DataOffsetBytes, l.Text)).ToArray());
        }
        else
        {
            Assert.Null(info.ParentUuid);
            Assert.Empty(info.Locators);
        }
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Guest_content_of_every_sample_matches_vhd_util_with_parents_resolved_by_uuid(string name)
    {
        var facts = Samples.VhdUtilFacts(name);
        var path = Samples.VhdUtilPath(name);
        var before = Repo.Sha256File(path);
        var sources = Samples.VhdUtilNames.Select(n => FileBlockSource.Open(Samples.VhdUtilPath(n))).ToList();
        try
        {
            var byUuid = sources.ToDictionary(s => VhdImage.Open(s).Footer!.Uuid, s => (IBlockSource)s);
            var leaf = sources[Array.IndexOf(Samples.VhdUtilNames, name)];
            var chain = VhdChain.Open(leaf, uuid => byUuid.GetValueOrDefault(uuid));

            Assert.Empty(chain.Findings);
            Assert.Equal(facts.GetProperty("chain").GetArrayLength(), chain.Images.Count);
            Assert.Equal(facts.GetProperty("chain").EnumerateArray().Select(e => e.GetString()),
                chain.Images.Select(i => Path.GetFileName(i.Source.Name)));
            Assert.Equal(facts.GetProperty("guest_content_sha256").GetString(), VhdTestSupport.Sha256(chain.OpenContent()));
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }

        Assert.Equal(before, Repo.Sha256File(path));
    }

    [Fact]
    public void Unaligned_reads_match_aligned_reads()
    {
        var sources = Samples.VhdUtilNames.Select(n => FileBlockSource.Open(Samples.VhdUtilPath(n))).ToList();
        try
        {
            var byUuid = sources.ToDictionary(s => VhdImage.Open(s).Footer!.Uuid, s => (IBlockSource)s);
            var content = VhdChain.Open(sources[3], uuid => byUuid.GetValueOrDefault(uuid)).OpenContent();
            var all = new byte[content.LengthBytes];
            content.ReadExactlyAt(0, all);
            var rng = new Random(7);
            for (var i = 0; i < 200; i++)
            {
                var off = rng.NextInt64(content.LengthBytes);
                var len = (int)Math.Min(rng.Next(1, 3 << 20), content.LengthBytes - off);
                var part = new byte[len];
                content.ReadExactlyAt(off, part);
                Assert.True(all.AsSpan((int)off, len).SequenceEqual(part), $"mismatch at {off}+{len}");
            }
        }
        finally
        {
            sources.ForEach(s => s.Dispose());
        }
    }
}
