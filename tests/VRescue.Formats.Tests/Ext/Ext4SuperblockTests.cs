// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Formats.Xen;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Ext;

/// <summary>Images come from e2fsprogs mkfs; expected values from dumpe2fs -h and blkid, never from our decoder.</summary>
public sealed class Ext4SuperblockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-ext-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Tool(string name) => Repo.Which(name) ?? throw new InvalidOperationException(name + " not installed");

    private string MakeFs(string mkfs, string options)
    {
        var img = Path.Combine(_dir, mkfs + ".img");
        Repo.Run(Tool(mkfs), $"-F -q {options} \"{img}\" 16M");
        return img;
    }

    private static Dictionary<string, string> DumpE2fs(string img)
    {
        var facts = new Dictionary<string, string>();
        var text = Repo.Run(Tool("dumpe2fs"), $"-h \"{img}\"", new Dictionary<string, string> { ["TZ"] = "UTC", ["LC_ALL"] = "C" });
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon > 0)
            {
                facts.TryAdd(line[..colon].Trim(), line[(colon + 1)..].Trim());
            }
        }

        return facts;
    }

    private static Ext4Superblock Read(string img)
    {
        var first = File.ReadAllBytes(img)[..2048];
        Assert.True(Ext4Superblock.LooksLikeExt(first));
        return Ext4Superblock.Decode(first.AsSpan(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes));
    }

    // dumpe2fs prints times with ctime(3): "Tue Jan  2 03:04:05 2024".
    private static string Ctime(DateTimeOffset? t) =>
        t is { } v ? $"{v.UtcDateTime.ToString("ddd MMM", CultureInfo.InvariantCulture)} {v.Day,2} {v.UtcDateTime.ToString("HH:mm:ss yyyy", CultureInfo.InvariantCulture)}" : "n/a";

    private static string ErrorsText(Ext4ErrorBehaviour? e) => e switch
    {
        Ext4ErrorBehaviour.Continue => "Continue",
        Ext4ErrorBehaviour.RemountReadOnly => "Remount read-only",
        Ext4ErrorBehaviour.Panic => "Panic",
        _ => "Unknown (continue)",
    };

    private static string StateText(Ext4State s) =>
        ((s & Ext4State.CleanlyUnmounted) != 0 ? "clean" : "not clean") + ((s & Ext4State.ErrorsDetected) != 0 ? " with errors" : "");

    [RealTheory("mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "dumpe2fs", "blkid")]
    [InlineData("mkfs.ext2")]
    [InlineData("mkfs.ext3")]
    [InlineData("mkfs.ext4")]
    public void Decode_matches_dumpe2fs_and_blkid(string mkfs)
    {
        var uuid = Guid.NewGuid();
        var img = MakeFs(mkfs, $"-L mylabel -U {uuid}");
        var facts = DumpE2fs(img);
        var sb = Read(img);

        Assert.Empty(sb.Validate());
        Assert.Equal(facts["Filesystem UUID"], sb.Uuid.ToString());
        Assert.Equal(uuid, sb.Uuid);
        Assert.Equal(facts["Filesystem volume name"], sb.VolumeName);
        Assert.Equal(facts["Block count"], sb.BlocksCount.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Block size"], sb.BlockSizeBytes?.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Inode count"], sb.InodesCount.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Errors behavior"], ErrorsText(sb.Errors));
        Assert.Equal(facts["Filesystem state"], StateText(sb.State));
        Assert.Equal(facts["Last write time"], Ctime(sb.WriteTime));
        Assert.Equal(facts["Filesystem created"], Ctime(sb.CreatedTime));
        Assert.Equal(facts["Filesystem features"].Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(), sb.FeatureNames.Order());
        if (facts.TryGetValue("Checksum", out var checksum))
        {
            Assert.Equal(checksum, $"0x{sb.StoredChecksum:x8}");
            Assert.Equal(sb.StoredChecksum, sb.ComputedChecksum);
        }

        var blkidType = Repo.Run(Tool("blkid"), $"-p -o value -s TYPE \"{img}\"").Trim();
        Assert.Equal(blkidType, sb.Kind.ToString().ToLowerInvariant());
    }

    /// <summary>
    /// Every backup superblock dumpe2fs lists (full listing: "Backup superblock at N") decodes to its own group
    /// number, and its CopyOffsetInFilesystemBytes is exactly where dumpe2fs says it is, for 1 KiB blocks (first data
    /// block 1) and 4 KiB blocks.
    /// </summary>
    [RealTheory("mkfs.ext4", "dumpe2fs")]
    [InlineData(1024)]
    [InlineData(4096)]
    public void Backup_superblocks_sit_where_dumpe2fs_lists_them(int blockBytes)
    {
        var img = Path.Combine(_dir, $"backups-{blockBytes}.img");
        Repo.Run(Tool("mkfs.ext4"), $"-F -q -b {blockBytes} -g {blockBytes} \"{img}\" 64M");
        var facts = DumpE2fs(img);
        var listing = Repo.Run(Tool("dumpe2fs"), $"\"{img}\"", new Dictionary<string, string> { ["LC_ALL"] = "C" });
        var backups = System.Text.RegularExpressions.Regex.Matches(listing, @"Backup superblock at (\d+)")
            .Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(backups.Count >= 2, $"dumpe2fs lists {backups.Count} backup superblocks");

        var bytes = File.ReadAllBytes(img);
        var primary = Ext4Superblock.Decode(bytes.AsSpan(Ext4Superblock.OffsetBytes, Ext4Superblock.SizeBytes));
        Assert.Equal(facts["First block"], primary.FirstDataBlock.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Blocks per group"], primary.BlocksPerGroup.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Inodes per group"], primary.InodesPerGroup.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Inode size"], primary.InodeSizeBytes.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts.GetValueOrDefault("Group descriptor size", "32"), primary.DescriptorSizeBytes.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(0, primary.BlockGroupNumber);
        Assert.Equal(Ext4Superblock.OffsetBytes, primary.CopyOffsetInFilesystemBytes);
        foreach (var block in backups)
        {
            var at = block * blockBytes;
            var copy = Ext4Superblock.Decode(bytes.AsSpan((int)at, Ext4Superblock.SizeBytes));
            Assert.Equal(primary.Uuid, copy.Uuid);
            Assert.NotEqual(0, copy.BlockGroupNumber);
            Assert.Equal(at, copy.CopyOffsetInFilesystemBytes);
        }
    }

    [RealFact("mkfs.ext4", "dumpe2fs", "debugfs")]
    public void Error_fields_set_by_debugfs_match_dumpe2fs()
    {
        var img = MakeFs("mkfs.ext4", "-L guest");
        var commands = Path.Combine(_dir, "ssv.cmd");
        File.WriteAllLines(commands,
        [
            "ssv error_count 3", "ssv first_error_time 20240102030405", "ssv first_error_func ext4_lookup",
            "ssv first_error_line 1234", "ssv first_error_ino 12", "ssv first_error_block 99",
            "ssv last_error_time 20250203040506", "ssv last_error_func ext4_readdir", "ssv last_error_line 77",
            "ssv last_error_ino 13", "ssv last_error_block 4242", "ssv errors 3", "ssv state 3",
        ]);
        Repo.Run(Tool("debugfs"), $"-w -f \"{commands}\" \"{img}\"");
        var facts = DumpE2fs(img);
        var sb = Read(img);

        Assert.Equal(facts["FS Error count"], sb.ErrorCount.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["First error time"], Ctime(sb.FirstErrorTime));
        Assert.Equal(facts["First error function"], sb.FirstErrorFunction);
        Assert.Equal(facts["First error line #"], sb.FirstErrorLine.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["First error inode #"], sb.FirstErrorInode.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["First error block #"], sb.FirstErrorBlock.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Last error time"], Ctime(sb.LastErrorTime));
        Assert.Equal(facts["Last error function"], sb.LastErrorFunction);
        Assert.Equal(facts["Last error line #"], sb.LastErrorLine.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Last error inode #"], sb.LastErrorInode.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Last error block #"], sb.LastErrorBlock.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(facts["Errors behavior"], ErrorsText(sb.Errors));
        Assert.Equal(facts["Filesystem state"], StateText(sb.State));
        Assert.Equal(facts["Checksum"], $"0x{sb.ComputedChecksum:x8}");

        var finding = Assert.Single(sb.Validate());
        Assert.Equal(("EXT_ERRORS_RECORDED", Severity.Warning, "3"), (finding.Code, finding.Severity, finding.Stored));
        Assert.Contains("ext4_lookup:1234", finding.Message);
    }

    [RealFact("mkfs.ext4")]
    public void Flipped_byte_breaks_the_metadata_csum_with_stored_and_expected()
    {
        var img = MakeFs("mkfs.ext4", "");
        var bytes = File.ReadAllBytes(img)[1024..2048];
        var good = Ext4Superblock.Parse(bytes);
        bytes[0x78] ^= 0x20;

        var bad = Ext4Superblock.Decode(bytes);
        var f = Assert.Single(bad.Validate());
        Assert.Equal(("EXT_BAD_CHECKSUM", 1024L + 0x3FC), (f.Code, f.OffsetBytes));
        Assert.Equal((Hex.U32(good.StoredChecksum), Hex.U32(bad.ComputedChecksum)), (f.Stored, f.Expected));
        Assert.Throws<CorruptDataException>(() => Ext4Superblock.Parse(bytes));
    }

    [RealFact("mkfs.ext4")]
    public void Ext_image_is_not_an_sr_metadata_volume()
    {
        var bytes = File.ReadAllBytes(MakeFs("mkfs.ext4", ""))[..4096];
        Assert.True(Ext4Superblock.LooksLikeExt(bytes));
        Assert.Contains(XenMgtVolume.Decode(bytes).Findings, f => f.Code == "XEN_MGT_NO_MAGIC");
    }

    [Fact]
    public void Zeroes_random_bytes_and_short_input_are_handled()
    {
        Assert.False(Ext4Superblock.LooksLikeExt(new byte[2048]));
        Assert.False(Ext4Superblock.LooksLikeExt(new byte[1500]));
        var zero = Ext4Superblock.Decode(new byte[1024]);
        Assert.Equal("EXT_NO_MAGIC", Assert.Single(zero.Validate()).Code);
        Assert.Throws<CorruptDataException>(() => Ext4Superblock.Decode(new byte[100]));

        var rng = new Random(99);
        for (var i = 0; i < 500; i++)
        {
            var bytes = new byte[1024];
            rng.NextBytes(bytes);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x38), 0xEF53);
            var sb = Ext4Superblock.Decode(bytes);
            _ = sb.Validate();
            _ = sb.FeatureNames;
            _ = sb.Kind;
        }
    }

    [Fact]
    public void Huge_log_block_size_is_reported_not_shifted()
    {
        var bytes = new byte[1024];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x38), 0xEF53);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x18), 40);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3A), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(0x3C), 1);
        var sb = Ext4Superblock.Decode(bytes);
        Assert.Null(sb.BlockSizeBytes);
        Assert.Equal("EXT_BAD_BLOCK_SIZE", Assert.Single(sb.Validate()).Code);
    }

    [Theory]
    [InlineData(0x0u, 0x2u, 0x3u, ExtKind.Ext2)]
    [InlineData(0x4u, 0x2u, 0x3u, ExtKind.Ext3)]
    [InlineData(0x4u, 0x6u, 0x3u, ExtKind.Ext3)]
    [InlineData(0x4u, 0x42u, 0x3u, ExtKind.Ext4)]
    [InlineData(0x0u, 0x42u, 0x3u, ExtKind.Ext4)]
    [InlineData(0x4u, 0x2u, 0x403u, ExtKind.Ext4)]
    [InlineData(0x0u, 0x8u, 0x0u, ExtKind.JournalDevice)]
    public void Kind_follows_libblkid_feature_rules(uint compat, uint incompat, uint roCompat, ExtKind kind)
    {
        var bytes = new byte[1024];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x5C), compat);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x60), incompat);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x64), roCompat);
        Assert.Equal(kind, Ext4Superblock.Decode(bytes).Kind);
    }
}
