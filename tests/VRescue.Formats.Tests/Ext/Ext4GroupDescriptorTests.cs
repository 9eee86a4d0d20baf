// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text.RegularExpressions;
using VRescue.Formats.Ext;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Ext;

/// <summary>Group descriptor tables written by mkfs.ext4, decoded and compared with dumpe2fs's full listing, group by group.</summary>
public sealed partial class Ext4GroupDescriptorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-extgd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // "Group 1: (Blocks 8193-16384) csum 0x7cd4 [INODE_UNINIT, BLOCK_UNINIT]" then the group's indented lines.
    [GeneratedRegex(@"^Group (\d+): \(Blocks [^)]*\)(?: csum 0x([0-9a-f]+))?(?: \[([A-Z_, ]+)\])?", RegexOptions.Multiline)]
    private static partial Regex GroupLine();

    private static long At(string group, string what) =>
        long.Parse(Regex.Match(group, what + @" at (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);

    [RealTheory("mkfs.ext4", "dumpe2fs")]
    [InlineData("-b 4096 -g 8192 -O 64bit,metadata_csum")]
    [InlineData("-b 1024 -O ^64bit,^metadata_csum,uninit_bg")]
    [InlineData("-b 4096 -g 8192 -O ^64bit,metadata_csum,metadata_csum_seed")]
    public void Decode_matches_dumpe2fs_for_every_group(string options)
    {
        var img = Path.Combine(_dir, "fs.img");
        Repo.Run(Repo.Which("mkfs.ext4")!, $"-F -q {options} -U {Guid.NewGuid()} \"{img}\" 96M");
        var listing = Repo.Run(Repo.Which("dumpe2fs")!, $"\"{img}\"", new Dictionary<string, string> { ["LC_ALL"] = "C" });
        var bytes = File.ReadAllBytes(img);
        var sb = Ext4Superblock.Decode(bytes.AsSpan(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes));
        var seed = Ext4GroupDescriptor.ChecksumSeed(sb);

        var groups = GroupLine().Matches(listing);
        Assert.True(groups.Count >= 3, $"dumpe2fs lists {groups.Count} groups");
        for (var i = 0; i < groups.Count; i++)
        {
            var m = groups[i];
            var text = listing[m.Index..(i + 1 < groups.Count ? groups[i + 1].Index : listing.Length)];
            var g = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var at = Ext4GroupDescriptor.OffsetInFilesystemBytes(sb, g)!.Value;
            var raw = bytes.AsSpan((int)at, sb.DescriptorSizeBytes);
            var d = Ext4GroupDescriptor.Decode(raw);

            Assert.Equal(At(text, "Block bitmap"), (long)d.BlockBitmapBlock);
            Assert.Equal(At(text, "Inode bitmap"), (long)d.InodeBitmapBlock);
            Assert.Equal(At(text, "Inode table"), (long)d.InodeTableBlock);
            var flags = m.Groups[3].Success ? m.Groups[3].Value.Split(", ") : [];
            Assert.Equal(flags.Contains("INODE_UNINIT"), d.Flags.HasFlag(Ext4GroupFlags.InodeUninit));
            Assert.Equal(flags.Contains("BLOCK_UNINIT"), d.Flags.HasFlag(Ext4GroupFlags.BlockUninit));
            Assert.Equal(flags.Contains("ITABLE_ZEROED"), d.Flags.HasFlag(Ext4GroupFlags.InodeTableZeroed));
            if (m.Groups[2].Success)
            {
                Assert.Equal(m.Groups[2].Value, d.StoredChecksum.ToString("x4", CultureInfo.InvariantCulture));
            }

            if (sb.HasMetadataChecksum)
            {
                Assert.Equal(d.StoredChecksum, Ext4GroupDescriptor.ComputeMetadataChecksum(seed, (uint)g, raw));
            }
        }
    }

    [Fact]
    public void Short_descriptor_is_refused_and_32_byte_one_has_no_high_halves()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Ext4GroupDescriptor.Decode(new byte[31]));
        var d = new byte[64];
        d[0] = 5;
        d[0x20] = 1; // bg_block_bitmap_hi: only read from a 64-byte descriptor
        Assert.Equal(5UL, Ext4GroupDescriptor.Decode(d.AsSpan(0, 32)).BlockBitmapBlock);
        Assert.Equal((1UL << 32) | 5, Ext4GroupDescriptor.Decode(d).BlockBitmapBlock);
    }
}
