// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text.Json;
using VRescue.Formats.Vhd;
using VRescue.Storage;
using VRescue.Storage.Vhd;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Export;

/// <summary>
/// `vrescue export` and `vrescue recover` against the real-tool fixtures: every VDI comes out byte-identical to the
/// ext4 image (or vhd-util facts) it was made from, as raw and as VHD; VHD outputs read the same through qemu-img and
/// libvhdi; the source image is never written.
/// </summary>
public sealed class ExportFixtureTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Cli.Result Run(string image, params string[] args)
    {
        var before = Repo.Sha256File(image);
        var r = Cli.Run(args);
        Assert.Equal(before, Repo.Sha256File(image));
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        return r;
    }

    private static Dictionary<string, JsonElement> ByUuid(JsonElement manifest, string key = "vdis") =>
        manifest.GetProperty(key).EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!);

    private static string Sha256(string path) => Repo.Sha256File(path);

    private string QemuRaw(string vhd)
    {
        var raw = Path.Combine(_dir, Path.GetFileNameWithoutExtension(vhd) + ".qemu.raw");
        Repo.Run("qemu-img", $"convert -f vpc -O raw \"{vhd}\" \"{raw}\"");
        return raw;
    }

    /// <summary>
    /// Mounts <paramref name="vhd"/> with libvhdi's vhdimount (FUSE; parents found by the header's parent name in the
    /// same directory) and returns the sha256 of every layer it exposes, base first (vhdi1), the leaf last.
    /// </summary>
    private string[] VhdimountSha256(string vhd)
    {
        var mnt = Directory.CreateTempSubdirectory("vrescue-vhdimount-").FullName;
        try
        {
            Repo.Run("vhdimount", $"\"{vhd}\" \"{mnt}\"");
            try
            {
                return Directory.GetFiles(mnt, "vhdi*").OrderBy(f => int.Parse(Path.GetFileName(f)[4..], CultureInfo.InvariantCulture)).Select(Sha256).ToArray();
            }
            finally
            {
                Repo.Run("fusermount3", $"-u \"{mnt}\"", check: false);
            }
        }
        finally
        {
            Directory.Delete(mnt);
        }
    }

    [RealFact(Fixture = "sr-export")]
    public void Export_no_sha256_leaves_the_hash_out_and_the_content_unchanged()
    {
        var fx = new SrFixture("sr-export");
        var outDir = Path.Combine(_dir, "nohash");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--format", "raw", "--no-sha256", "--json");
        Assert.Equal(ExitCodes.Ok, r.ExitCode);
        var vdis = ByUuid(r.Json);
        foreach (var want in fx.Sr.GetProperty("vdis").EnumerateArray().Where(v => vdis.ContainsKey(v.GetProperty("uuid").GetString()!)))
        {
            var got = vdis[want.GetProperty("uuid").GetString()!];
            Assert.Equal(JsonValueKind.Null, got.GetProperty("sha256").ValueKind);
            Assert.Equal(want.GetProperty("expectedSha256").GetString(), Sha256(Path.Combine(outDir, got.GetProperty("file").GetString()!)));
        }

        Assert.NotEmpty(vdis);
        Assert.Equal(ExitCodes.Usage, Cli.Run("export", fx.ImagePath, "--out", outDir, "--keep-chain", "--no-sha256").ExitCode);
    }

    [RealFact("vhdimount", "fusermount3", Fixture = "sr-export")]
    public void Export_vhd_outputs_read_identically_through_libvhdi_vhdimount()
    {
        var fx = new SrFixture("sr-export");
        var outDir = Path.Combine(_dir, "vhd");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--all", "--format", "vhd", "--json");
        var vdis = ByUuid(r.Json);
        foreach (var want in fx.Sr.GetProperty("vdis").EnumerateArray().Where(v => !v.GetProperty("deleted").GetBoolean()))
        {
            var got = vdis[want.GetProperty("uuid").GetString()!];
            var layers = VhdimountSha256(Path.Combine(outDir, got.GetProperty("file").GetString()!));
            Assert.Equal([want.GetProperty("expectedSha256").GetString()!], layers);
        }
    }

    [RealFact("vhdiinfo", "vhdimount", "fusermount3", Fixture = "sr-export")]
    public void Export_keep_chain_writes_base_dynamic_and_differencing_children_that_libvhdi_follows()
    {
        var fx = new SrFixture("sr-export");
        var outDir = Path.Combine(_dir, "chain");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--all", "--keep-chain", "--json");
        Assert.Equal(ExitCodes.Ok, r.ExitCode);
        var vdis = ByUuid(r.Json);
        var facts = fx.Sr.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!);
        string[] chainUuids = ["d4e5f6a7-0003-4b8c-9d0e-1f2a3b4c5d6e", "d4e5f6a7-0004-4b8c-9d0e-1f2a3b4c5d6e", "d4e5f6a7-0005-4b8c-9d0e-1f2a3b4c5d6e"];

        var leaf = vdis[chainUuids[2]];
        var layers = leaf.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(chainUuids, layers.Select(l => l.GetProperty("uuid").GetString()));
        Assert.Equal(["dynamic", "differencing", "differencing"], layers.Select(l => l.GetProperty("diskType").GetString()));
        Assert.Equal(leaf.GetProperty("file").GetString(), layers[^1].GetProperty("file").GetString());
        for (var i = 0; i < layers.Count; i++)
        {
            var file = Path.Combine(outDir, layers[i].GetProperty("file").GetString()!);
            var info = Repo.Run("vhdiinfo", $"\"{file}\"");
            Assert.Contains($"Identifier\t\t: {facts[chainUuids[i]].GetProperty("footerUuid").GetString()}", info);
            if (i == 0)
            {
                Assert.Contains("Disk type\t\t: Dynamic", info);
                Assert.DoesNotContain("Parent identifier", info);
            }
            else
            {
                Assert.Contains("Disk type\t\t: Differential", info);
                Assert.Contains($"Parent identifier\t: {facts[chainUuids[i - 1]].GetProperty("footerUuid").GetString()}", info);
                Assert.Contains($"Parent filename\t\t: {layers[i - 1].GetProperty("file").GetString()}", info);
                Assert.Equal(layers[i - 1].GetProperty("file").GetString(), layers[i].GetProperty("parentFile").GetString());
            }
        }

        // libvhdi resolves the parents from the files next to the leaf: every layer reads as its own guest content.
        Assert.Equal(chainUuids.Select(u => facts[u].GetProperty("expectedSha256").GetString()!).ToArray(),
            VhdimountSha256(Path.Combine(outDir, leaf.GetProperty("file").GetString()!)));

        // Each VDI of the chain exported in the same run shares the layer files, and its sha256 (read back through our
        // VhdChain from the written files) is its guest content.
        foreach (var uuid in chainUuids)
        {
            Assert.Equal(facts[uuid].GetProperty("expectedSha256").GetString(), vdis[uuid].GetProperty("sha256").GetString());
        }

        Assert.Equal(vdis.Values.Select(v => v.GetProperty("file").GetString()).Order(), Directory.GetFiles(outDir, "*.vhd").Select(Path.GetFileName).Order());
        Assert.Empty(Directory.GetFiles(outDir, ".*"));

        // Differencing layers carry exactly the source's allocated blocks and sector bitmaps, so clear bits fall through.
        foreach (var i in new[] { 1, 2 })
        {
            var sample = Samples.VhdUtilPath(facts[chainUuids[i]].GetProperty("sample").GetString()!);
            using var srcFile = FileBlockSource.Open(sample);
            using var outFile = FileBlockSource.Open(Path.Combine(outDir, layers[i].GetProperty("file").GetString()!));
            var src = VhdImage.Open(srcFile);
            var exported = VhdImage.Open(outFile);
            Assert.True(exported.CanRead);
            Assert.Equal(VhdDiskType.Differencing, exported.Footer!.DiskType);
            var blocks = src.VirtualSizeBytes / src.Header!.BlockSizeBytes;
            for (long b = 0; b < blocks; b++)
            {
                Assert.Equal(src.DataOffsetBytes(b) is not null, exported.DataOffsetBytes(b) is not null);
                if (src.DataOffsetBytes(b) is not null)
                {
                    Assert.Equal(EffectiveBitmap(src, b), EffectiveBitmap(exported, b));
                }
            }
        }
    }

    private static byte[] EffectiveBitmap(VhdImage image, long block) =>
        image.IsBlockFull(block) ? Enumerable.Repeat((byte)0xFF, 512).ToArray() : image.ReadSectorBitmap(block)[..512];

    [RealFact(Fixture = "sr-export")]
    public void Export_keep_chain_refuses_raw_format()
    {
        var fx = new SrFixture("sr-export");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", Path.Combine(_dir, "x"), "--keep-chain", "--format", "raw");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
        Assert.Contains("--keep-chain", r.Stderr);
    }

    [RealTheory("qemu-img", "vhdiinfo", Fixture = "sr-gpt")]
    [InlineData("sr-lun")]
    [InlineData("sr-gpt")]
    public void Export_raw_and_vhd_match_the_source_ext4_images(string fixture)
    {
        var fx = new SrFixture(fixture);
        foreach (var format in new[] { "raw", "vhd" })
        {
            var outDir = Path.Combine(_dir, format);
            var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--format", format, "--json");
            Assert.Equal(ExitCodes.Ok, r.ExitCode);
            var vdis = ByUuid(r.Json);
            var manifest = ByUuid(JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json"))).RootElement);
            foreach (var want in fx.Sr.GetProperty("vdis").EnumerateArray())
            {
                var uuid = want.GetProperty("uuid").GetString()!;
                var got = vdis[uuid];
                var ext4 = want.GetProperty("sourceExt4Sha256").GetString();
                Assert.Equal(ext4, got.GetProperty("sha256").GetString());
                Assert.Equal(ext4, manifest[uuid].GetProperty("sha256").GetString());
                Assert.Equal(want.GetProperty("nameLabel").GetString(), got.GetProperty("nameLabel").GetString());
                Assert.Equal("current", got.GetProperty("source").GetProperty("kind").GetString());
                var file = Path.Combine(outDir, got.GetProperty("file").GetString()!);
                Assert.StartsWith(uuid, Path.GetFileName(file));
                if (format == "raw")
                {
                    Assert.Equal(ext4, Sha256(file));
                    Assert.Equal(want.GetProperty("virtualSizeBytes").GetInt64(), new FileInfo(file).Length);
                    var allocated = long.Parse(Repo.Run("stat", $"-c %b \"{file}\"").Trim()) * 512;
                    Assert.True(allocated < new FileInfo(file).Length / 2, $"{file}: {allocated} bytes allocated, expected holes");
                }
                else
                {
                    Assert.Equal(ext4, Sha256(QemuRaw(file)));
                    Assert.Contains($"({want.GetProperty("virtualSizeBytes").GetInt64()} bytes)", Repo.Run("vhdiinfo", $"\"{file}\""));
                }
            }

            Assert.Empty(Directory.GetFiles(outDir, ".*"));
        }
    }

    [RealFact("qemu-img", Fixture = "sr-export")]
    public void Export_honours_sector_bitmap_when_stale_data_present()
    {
        var fx = new SrFixture("sr-export");
        var want = fx.Sr.GetProperty("vdis").EnumerateArray().First(v => v.TryGetProperty("staleSectorCount", out _));
        var uuid = want.GetProperty("uuid").GetString()!;
        foreach (var format in new[] { "raw", "vhd" })
        {
            var outDir = Path.Combine(_dir, format);
            var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--vdi", uuid, "--format", format, "--json");
            Assert.Equal(ExitCodes.Ok, r.ExitCode);
            var got = ByUuid(r.Json)[uuid];
            Assert.Equal(want.GetProperty("sourceExt4Sha256").GetString(), got.GetProperty("sha256").GetString());
            var file = Path.Combine(outDir, got.GetProperty("file").GetString()!);
            var raw = format == "raw" ? file : QemuRaw(file);
            Assert.Equal(want.GetProperty("sourceExt4Sha256").GetString(), Sha256(raw));
            using var f = File.OpenRead(raw);
            var stale = new byte[want.GetProperty("staleSectorCount").GetInt32() * 512];
            f.Position = want.GetProperty("staleGuestOffsetBytes").GetInt64();
            f.ReadExactly(stale);
            Assert.DoesNotContain(stale, b => b != 0);
        }
    }

    [RealFact("qemu-img", Fixture = "sr-export")]
    public void Export_flattens_the_vhd_util_chain_and_samples_to_their_guest_sha256()
    {
        var fx = new SrFixture("sr-export");
        foreach (var format in new[] { "raw", "vhd" })
        {
            var outDir = Path.Combine(_dir, format);
            var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--all", "--format", format, "--json");
            var vdis = ByUuid(r.Json);
            foreach (var want in fx.Sr.GetProperty("vdis").EnumerateArray().Where(v => v.TryGetProperty("sample", out _)))
            {
                var got = vdis[want.GetProperty("uuid").GetString()!];
                var expected = want.GetProperty("expectedSha256").GetString();
                Assert.Equal(expected, got.GetProperty("sha256").GetString());
                var file = Path.Combine(outDir, got.GetProperty("file").GetString()!);
                Assert.Equal(expected, Sha256(format == "raw" ? file : QemuRaw(file)));
                Assert.Equal(want.GetProperty("hidden").GetBoolean(), got.GetProperty("hidden").GetBoolean());
            }

            var leaf = vdis["d4e5f6a7-0005-4b8c-9d0e-1f2a3b4c5d6e"];
            Assert.Equal(["d4e5f6a7-0005-4b8c-9d0e-1f2a3b4c5d6e", "d4e5f6a7-0004-4b8c-9d0e-1f2a3b4c5d6e", "d4e5f6a7-0003-4b8c-9d0e-1f2a3b4c5d6e"],
                leaf.GetProperty("chain").EnumerateArray().Select(c => c.GetProperty("uuid").GetString()));
        }
    }

    [RealFact(Fixture = "sr-export")]
    public void Export_without_all_skips_hidden_base_copy_and_sanitises_names()
    {
        var fx = new SrFixture("sr-export");
        var outDir = Path.Combine(_dir, "out");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", outDir, "--format", "raw", "--json");
        var vdis = ByUuid(r.Json);
        Assert.DoesNotContain("d4e5f6a7-0003-4b8c-9d0e-1f2a3b4c5d6e", vdis.Keys);
        Assert.Equal("d4e5f6a7-0001-4b8c-9d0e-1f2a3b4c5d6e-stale_etc_passwd.raw", vdis["d4e5f6a7-0001-4b8c-9d0e-1f2a3b4c5d6e"].GetProperty("file").GetString());
        Assert.All(Directory.GetFiles(outDir), f => Assert.Equal(outDir, Path.GetDirectoryName(f)));
    }

    [RealFact("qemu-img", Fixture = "sr-export")]
    public void Recover_brings_back_the_deleted_vdi_from_the_metadata_ring_without_any_backup()
    {
        var fx = new SrFixture("sr-export");
        var deleted = fx.Sr.GetProperty("vdis").EnumerateArray().First(v => v.GetProperty("deleted").GetBoolean());
        var uuid = deleted.GetProperty("uuid").GetString()!;

        var outDir = Path.Combine(_dir, "ring");
        var r = Run(fx.ImagePath, "recover", fx.ImagePath, "--out", outDir, "--format", "raw", "--json");
        Assert.Equal(ExitCodes.Warnings, r.ExitCode);
        var got = ByUuid(r.Json, "recovered")[uuid];
        Assert.True(got.GetProperty("deleted").GetBoolean());
        Assert.Equal("ring", got.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(BackupSeqno(fx), got.GetProperty("source").GetProperty("seqno").GetInt64());
        Assert.Equal(deleted.GetProperty("sourceExt4Sha256").GetString(), Sha256(Path.Combine(outDir, got.GetProperty("file").GetString()!)));
        Assert.Empty(r.Json.GetProperty("notRecovered").EnumerateArray());
        Assert.Contains("[deleted]", File.ReadAllText(Path.Combine(outDir, "report.txt")));
        var leaf = ByUuid(r.Json, "recovered")["d4e5f6a7-0005-4b8c-9d0e-1f2a3b4c5d6e"];
        Assert.Equal("current", leaf.GetProperty("source").GetProperty("kind").GetString());
    }

    [RealFact("qemu-img", Fixture = "sr-export")]
    public void Recover_with_a_backup_file_brings_back_the_deleted_vdi_byte_identical()
    {
        var fx = new SrFixture("sr-export");
        var deleted = fx.Sr.GetProperty("vdis").EnumerateArray().First(v => v.GetProperty("deleted").GetBoolean());
        var uuid = deleted.GetProperty("uuid").GetString()!;
        var backup = Path.Combine(fx.Directory, "backup-before-delete.vg");

        var outDir = Path.Combine(_dir, "rec");
        var r = Run(fx.ImagePath, "recover", fx.ImagePath, "--out", outDir, "--backup", backup, "--format", "raw", "--json");
        Assert.Equal(ExitCodes.Warnings, r.ExitCode);
        var got = ByUuid(r.Json, "recovered")[uuid];
        Assert.True(got.GetProperty("deleted").GetBoolean());
        Assert.Contains(got.GetProperty("source").GetProperty("kind").GetString(), new[] { "backup-file", "ring" });
        Assert.Equal(deleted.GetProperty("sourceExt4Sha256").GetString(), Sha256(Path.Combine(outDir, got.GetProperty("file").GetString()!)));
        Assert.True(File.Exists(Path.Combine(outDir, "report.json")));
    }

    [RealFact(Fixture = "sr-export")]
    public void Export_from_vg_file_or_ring_seqno_uses_that_versions_extent_maps()
    {
        var fx = new SrFixture("sr-export");
        var backup = Path.Combine(fx.Directory, "backup-before-delete.vg");
        var uuid = "d4e5f6a7-0002-4b8c-9d0e-1f2a3b4c5d6e";
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", Path.Combine(_dir, "vgf"), "--vg-file", backup, "--vdi", uuid, "--format", "raw", "--json");
        Assert.Equal(ExitCodes.Ok, r.ExitCode);
        Assert.Equal("backup-file", ByUuid(r.Json)[uuid].GetProperty("source").GetProperty("kind").GetString());

        // The same version, read from the metadata ring: the seqno the backup file (vgcfgbackup output) records.
        var deleted = fx.Sr.GetProperty("vdis").EnumerateArray().First(v => v.GetProperty("deleted").GetBoolean());
        var deletedUuid = deleted.GetProperty("uuid").GetString()!;
        var seqDir = Path.Combine(_dir, "seq");
        var s = Run(fx.ImagePath, "export", fx.ImagePath, "--out", seqDir, "--seqno", BackupSeqno(fx).ToString(CultureInfo.InvariantCulture),
            "--vdi", deletedUuid, "--format", "raw", "--json");
        Assert.Equal(ExitCodes.Ok, s.ExitCode);
        var got = ByUuid(s.Json)[deletedUuid];
        Assert.Equal("ring", got.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal(deleted.GetProperty("sourceExt4Sha256").GetString(), Sha256(Path.Combine(seqDir, got.GetProperty("file").GetString()!)));

        var none = Run(fx.ImagePath, "export", fx.ImagePath, "--out", Path.Combine(_dir, "none"), "--seqno", "99999");
        Assert.Equal(ExitCodes.NotRecognised, none.ExitCode);
        Assert.Contains("no metadata version with seqno 99999", none.Stderr);
        Assert.False(Directory.Exists(Path.Combine(_dir, "none")));
    }

    /// <summary>seqno of the version vgcfgbackup wrote before the lvremove (the real tool's file, not our parser).</summary>
    private static long BackupSeqno(SrFixture fx)
    {
        var line = File.ReadLines(Path.Combine(fx.Directory, "backup-before-delete.vg")).First(l => l.Trim().StartsWith("seqno = ", StringComparison.Ordinal));
        return long.Parse(line.Trim()["seqno = ".Length..], CultureInfo.InvariantCulture);
    }

    [RealFact(Fixture = "sr-lun")]
    public void Truncated_image_gives_partial_output_with_unreadable_ranges_and_a_clear_report()
    {
        var fx = new SrFixture("sr-lun");
        var path = Path.Combine(_dir, "trunc.img");
        Repo.Run("cp", $"--sparse=always {fx.ImagePath} {path}");
        Repo.Run("truncate", $"-s {40 * MiB} {path}");
        var r = Run(path, "export", path, "--out", Path.Combine(_dir, "t"), "--format", "raw");
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        Assert.Contains("PARTIAL", r.Stdout);
        Assert.Contains("unreadable", r.Stdout);
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "t", "manifest.json"))).RootElement;
        var partial = manifest.GetProperty("vdis").EnumerateArray().Where(v => v.GetProperty("partial").GetBoolean()).ToList();
        Assert.NotEmpty(partial);
        Assert.All(partial, v => Assert.NotEmpty(v.GetProperty("unreadableRanges").EnumerateArray()));
    }

    [RealFact(Fixture = "sample")]
    public void Export_refuses_an_out_dir_that_is_a_source_and_bad_selectors()
    {
        var fx = new SrFixture("sample");
        var r = Run(fx.ImagePath, "export", fx.ImagePath, "--out", fx.ImagePath);
        Assert.NotEqual(ExitCodes.Ok, r.ExitCode);
        var bad = Run(fx.ImagePath, "export", fx.ImagePath, "--out", Path.Combine(_dir, "x"), "--vdi", "no-such-disk");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("no such VDI", bad.Stderr);
    }
}
