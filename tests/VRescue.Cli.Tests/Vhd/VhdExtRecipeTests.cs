// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Vhd;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// An ext4 made by mkfs.ext4 -d from files of known sha256, written as a XenServer-layout VHD with exact sector
/// bitmaps (a sector's bit is set when it holds data, so partial blocks exist), and the facts the tests need from
/// the real tools: each file's data blocks (debugfs blocks) and the group 1 backup superblock (dumpe2fs).
/// </summary>
public sealed partial class VhdExtImage : IDisposable
{
    public const int FsBlockBytes = 1024;
    public const long VhdBlockBytes = 2 << 20;

    public VhdExtImage()
    {
        Dir = Directory.CreateTempSubdirectory("vrescue-vhdextrecipes-").FullName;
        if (Prerequisites.MissingReason(["mkfs.ext4", "debugfs", "dumpe2fs", "qemu-img"], false, null) is not null)
        {
            return;
        }

        var tree = Directory.CreateDirectory(Path.Combine(Dir, "tree")).FullName;
        var rng = new Random(6);
        for (var i = 0; i < 12; i++)
        {
            var data = new byte[rng.Next(200_000, 3_000_000)];
            rng.NextBytes(data);
            File.WriteAllBytes(Path.Combine(tree, $"f{i}.bin"), data);
            Files[$"f{i}.bin"] = Convert.ToHexStringLower(SHA256.HashData(data));
        }

        Raw = Path.Combine(Dir, "fs.raw");
        Repo.Run("mkfs.ext4", $"-q -F -b {FsBlockBytes} -E lazy_itable_init=0 -d \"{tree}\" \"{Raw}\" 48M");
        RawSha256 = Repo.Sha256File(Raw);
        foreach (var name in Files.Keys)
        {
            var blocks = Repo.Run("debugfs", $"-R \"blocks /{name}\" \"{Raw}\"");
            FileBlocks[name] = blocks.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToHashSet();
        }

        var backup = BackupSuperblock().Match(Repo.Run("dumpe2fs", $"\"{Raw}\""));
        BackupBlock = long.Parse(backup.Groups[1].Value) * FsBlockBytes / VhdBlockBytes;

        Vhd = Path.Combine(Dir, "fs.vhd");
        var content = File.ReadAllBytes(Raw);
        using (var source = FileBlockSource.Open(Raw))
        using (var handle = File.OpenHandle(Vhd, FileMode.Create, FileAccess.ReadWrite))
        {
            XenVhdWriter.Write(handle, new VhdFooter { Uuid = Guid.NewGuid() }, source, block => SectorBitmap(content, block));
        }

        Assert.Equal("right content", VhdPeers.QemuConvert(Vhd, RawSha256));
        var nonZero = Enumerable.Range(0, (int)(content.Length / VhdBlockBytes)).Where(b => SectorBitmap(content, b) is not null).ToList();
        Allocated = nonZero;
        DataOnly = nonZero.Where(b => b != 0 && b != BackupBlock && IsFileDataOnly(content, b)).ToList();
        Partial = nonZero.First(b => SectorBitmap(content, b)!.AsSpan().ContainsAnyExcept((byte)0xFF));
        Full = nonZero.First(b => !SectorBitmap(content, b)!.AsSpan().ContainsAnyExcept((byte)0xFF));
    }

    public string Dir { get; }

    public string Raw { get; } = "";

    public string RawSha256 { get; } = "";

    public string Vhd { get; } = "";

    public Dictionary<string, string> Files { get; } = [];

    public Dictionary<string, HashSet<long>> FileBlocks { get; } = [];

    /// <summary>The VHD block holding the group 1 backup superblock.</summary>
    public long BackupBlock { get; }

    public IReadOnlyList<int> Allocated { get; } = [];

    /// <summary>VHD blocks whose non-zero fs blocks are all file data (no ext metadata, no extent tree blocks).</summary>
    public IReadOnlyList<int> DataOnly { get; } = [];

    public long Partial { get; }

    public long Full { get; }

    public byte[] Content => File.ReadAllBytes(Raw);

    public void Dispose() => Directory.Delete(Dir, recursive: true);

    /// <summary>One bit per non-zero sector, MSB first (VHD spec: sector bitmap); null for an all-zero block.</summary>
    public static byte[]? SectorBitmap(byte[] content, long block)
    {
        var bitmap = new byte[512];
        var any = false;
        for (var s = 0; s < VhdBlockBytes / 512; s++)
        {
            var at = block * VhdBlockBytes + s * 512L;
            if (at < content.Length && content.AsSpan((int)at, 512).ContainsAnyExcept((byte)0))
            {
                bitmap[s / 8] |= (byte)(0x80 >> (s % 8));
                any = true;
            }
        }

        return any ? bitmap : null;
    }

    /// <summary>The non-zero fs blocks a guest byte range touches.</summary>
    public IEnumerable<long> NonZeroFsBlocks(byte[] content, long offset, long length)
    {
        for (var fs = offset / FsBlockBytes; fs < (offset + length + FsBlockBytes - 1) / FsBlockBytes; fs++)
        {
            if (content.AsSpan((int)(fs * FsBlockBytes), FsBlockBytes).ContainsAnyExcept((byte)0))
            {
                yield return fs;
            }
        }
    }

    private bool IsFileDataOnly(byte[] content, long block)
    {
        var all = FileBlocks.Values.SelectMany(b => b).ToHashSet();
        var blocks = NonZeroFsBlocks(content, block * VhdBlockBytes, VhdBlockBytes).ToList();
        return blocks.Count > 0 && blocks.All(all.Contains);
    }

    [GeneratedRegex(@"Backup superblock at (\d+)")]
    private static partial Regex BackupSuperblock();
}

/// <summary>
/// Every repair recipe on the ext4 VHD: `vrescue vhd repair --format raw`, then e2fsck -fn and debugfs dump of every file
/// against its source sha256. Lost ranges expected from the recipe itself: the guest blocks whose BAT evidence it
/// destroyed (two data-only blocks), or the written sectors it cut off; everything else must come back bit for bit.
/// </summary>
public sealed class VhdExtRecipeTests(VhdExtImage image) : IClassFixture<VhdExtImage>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhdextrun-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Recipes => new(VhdRecipes.Dynamic);

    /// <summary>Block 4 (group 1's backup superblock) for single-entry damage, so "unallocated" can only be placed by ext structure; two data-only blocks where both entries lose their evidence.</summary>
    private VhdVictims Victims(string recipe) => recipe is "bat-entries-overlap" or "two-bat-entries-zeroed"
        ? new VhdVictims(image.DataOnly[0], image.DataOnly[1], image.Partial, image.Full)
        : new VhdVictims(image.BackupBlock, image.DataOnly[0], image.Partial, image.Full);

    private List<(long Offset, long Length)> ExpectedLost(string recipe, string vhd, byte[] content)
    {
        var v = Victims(recipe);
        switch (recipe)
        {
            case "bat-entries-overlap" or "two-bat-entries-zeroed":
                return new[] { v.Primary, v.Secondary }.Order().Select(b => (b * VhdExtImage.VhdBlockBytes, VhdExtImage.VhdBlockBytes)).ToList();
            case "truncated":
                // The last block on disk loses its last sector (the footer goes too); lost if a guest wrote it (bitmap bit set).
                var last = image.Allocated[^1];
                var sector = (last + 1) * VhdExtImage.VhdBlockBytes - 512;
                return content.AsSpan((int)sector, 512).ContainsAnyExcept((byte)0) ? [(sector, 512)] : [];
            default:
                return [];
        }
    }

    [RealTheory("mkfs.ext4", "e2fsck", "debugfs", "dumpe2fs", "qemu-img")]
    [MemberData(nameof(Recipes))]
    public void Repaired_ext4_is_clean_and_files_match_their_source_hashes(string recipe)
    {
        Assert.True(image.DataOnly.Count >= 2, "the ext4 image needs two VHD blocks holding only file data");
        var vhd = Path.Combine(_dir, recipe + ".vhd");
        File.Copy(image.Vhd, vhd);
        VhdRecipes.Apply(recipe, vhd, Victims(recipe));
        var content = image.Content;
        var lost = ExpectedLost(recipe, vhd, content);
        var before = Repo.Sha256File(vhd);

        var output = Path.Combine(_dir, recipe + ".raw");
        var r = Cli.Run("vhd", "repair", vhd, "--out", output, "--format", "raw", "--json");
        Assert.True(r.ExitCode == (lost.Count == 0 ? 0 : 2), $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(before, Repo.Sha256File(vhd));

        var badMap = File.ReadAllLines(output + ".badmap")
            .Where(l => !l.StartsWith('#') && l.EndsWith('-'))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(c => (Convert.ToInt64(c[0], 16), Convert.ToInt64(c[1], 16)))
            .ToList();
        Assert.Equal(Ranges.Merge(lost), badMap);
        if (lost.Count == 0)
        {
            Assert.Equal(image.RawSha256, Repo.Sha256File(output));
        }

        // e2fsck does not read file data: it must be clean whenever only file data blocks were lost.
        var lostFsBlocks = lost.SelectMany(l => image.NonZeroFsBlocks(content, l.Offset, l.Length)).ToHashSet();
        var fileData = image.FileBlocks.Values.SelectMany(b => b).ToHashSet();
        if (lostFsBlocks.All(fileData.Contains))
        {
            var fsck = VhdPeers.Run("e2fsck", "-fn", output);
            Assert.True(fsck.ExitCode == 0, $"e2fsck -fn {recipe}: exit {fsck.ExitCode}\n{fsck.Stdout}{fsck.Stderr}");
        }

        var commands = Path.Combine(_dir, recipe + ".debugfs");
        File.WriteAllLines(commands, image.Files.Keys.Select(n => $"dump /{n} {Path.Combine(_dir, recipe + "-" + n)}"));
        VhdPeers.Run("debugfs", "-f", commands, output);
        foreach (var (name, sha) in image.Files)
        {
            var dumped = Path.Combine(_dir, recipe + "-" + name);
            var hit = image.FileBlocks[name].Overlaps(lostFsBlocks);
            if (hit)
            {
                Assert.NotEqual(sha, File.Exists(dumped) ? Repo.Sha256File(dumped) : "");
            }
            else
            {
                Assert.True(File.Exists(dumped) && Repo.Sha256File(dumped) == sha, $"{recipe}: {name} read back by debugfs differs from its source");
            }
        }
    }
}
