// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text.Json;
using System.Text.RegularExpressions;
using VRescue.Formats.Vhd;
using VRescue.Storage.Vhd;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Vhd;

public sealed class VhdRealToolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-vhd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Random data with a few zero and partial regions, as a raw file of <paramref name="sizeBytes"/>.</summary>
    private string RandomRaw(long sizeBytes, int seed)
    {
        var data = new byte[sizeBytes];
        var rng = new Random(seed);
        rng.NextBytes(data);
        data.AsSpan((int)(sizeBytes / 3), (int)(sizeBytes / 4)).Clear(); // whole zero blocks: qemu leaves them unallocated
        var path = Path.Combine(_dir, $"src{seed}.raw");
        File.WriteAllBytes(path, data);
        return path;
    }

    private string QemuRawSha(string vhd)
    {
        var raw = vhd + ".out.raw";
        Repo.Run("qemu-img", $"convert -f vpc -O raw \"{vhd}\" \"{raw}\"");
        return Repo.Sha256File(raw);
    }

    [RealTheory("qemu-img")]
    [InlineData("dynamic", 10L << 20)]
    [InlineData("dynamic", 33L << 20)]
    [InlineData("fixed", 9L << 20)]
    public void Qemu_made_vhd_reads_like_qemu_img_convert(string subformat, long sizeBytes)
    {
        var raw = RandomRaw(sizeBytes, (int)(sizeBytes >> 20));
        var vhd = Path.Combine(_dir, $"q-{subformat}.vhd");
        Repo.Run("qemu-img", $"convert -f raw -O vpc -o subformat={subformat} \"{raw}\" \"{vhd}\"");
        var before = Repo.Sha256File(vhd);
        var qemuSize = JsonDocument.Parse(Repo.Run("qemu-img", $"info -f vpc --output=json \"{vhd}\"")).RootElement.GetProperty("virtual-size").GetInt64();

        using var file = FileBlockSource.Open(vhd);
        var image = VhdImage.Open(file);
        Assert.True(image.CanRead);
        Assert.DoesNotContain(image.Findings, f => f.Severity != Formats.Common.Severity.Info);
        Assert.Equal(subformat, image.Footer!.DiskType.ToString().ToLowerInvariant());
        Assert.Equal(qemuSize, image.VirtualSizeBytes);
        Assert.Equal(QemuRawSha(vhd), VhdTestSupport.Sha256(new VhdBlockSource(image)));
        Assert.Equal(before, Repo.Sha256File(vhd));
    }

    [RealFact("qemu-img", "vhdiinfo")]
    public void Vhdiinfo_facts_equal_ours_for_qemu_made_and_sample_vhds()
    {
        var raw = RandomRaw(6L << 20, 11);
        var made = Path.Combine(_dir, "made.vhd");
        Repo.Run("qemu-img", $"convert -f raw -O vpc \"{raw}\" \"{made}\"");
        foreach (var path in Samples.VhdUtilNames.Select(Samples.VhdUtilPath).Append(made))
        {
            var text = Repo.Run("vhdiinfo", $"\"{path}\"");
            var mediaSize = long.Parse(Regex.Match(text, @"Media size\s*:.*\((\d+) bytes\)").Groups[1].Value);
            var identifier = Guid.Parse(Regex.Match(text, @"Identifier\s*:\s*(\S+)").Groups[1].Value);
            var diskType = Regex.Match(text, @"Disk type\s*:\s*(\S+)").Groups[1].Value;
            Assert.Matches(@"Format\s*:\s*VHD \(version 1\)", text);

            using var file = FileBlockSource.Open(path);
            var image = VhdImage.Open(file);
            Assert.Equal(mediaSize, image.VirtualSizeBytes);
            Assert.Equal(identifier, image.Footer!.Uuid);
            Assert.Equal(diskType, image.Footer.DiskType switch { VhdDiskType.Differencing => "Differential", var t => t.ToString() });
            var parent = Regex.Match(text, @"Parent identifier\s*:\s*(\S+)");
            if (parent.Success)
            {
                Assert.Equal(Guid.Parse(parent.Groups[1].Value), image.Info.ParentUuid);
                Assert.Equal(Regex.Match(text, @"Parent filename\s*:\s*(.+)").Groups[1].Value.Trim(), image.Info.ParentName);
            }
        }
    }

    [RealFact("qemu-img")]
    public void Reader_honours_sector_bitmap_when_stale_data_present()
    {
        // A block written only in its first 4 KiB: qemu allocates the block and sets 8 bitmap bits.
        var vhd = Path.Combine(_dir, "stale.vhd");
        var img = Path.Combine(_dir, "partial.raw");
        var data = new byte[4L << 20];
        new Random(3).NextBytes(data.AsSpan((2 << 20) + 8192, 4096));
        File.WriteAllBytes(img, data);
        Repo.Run("qemu-img", $"convert -f raw -O vpc \"{img}\" \"{vhd}\"");
        var expected = QemuRawSha(vhd);

        // Independent arithmetic on the file: footer at end, header at its data offset, BAT entry of block 1.
        var bytes = File.ReadAllBytes(vhd);
        var footerAt = bytes.Length - 512;
        var headerAt = (int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(footerAt + 16));
        var batAt = (int)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(headerAt + 16));
        var blockSize = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(headerAt + 32));
        Assert.Equal(2 << 20, blockSize);
        var entry = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(batAt + 4));
        Assert.NotEqual(0xFFFFFFFFu, entry);
        Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(batAt)));
        var bitmapAt = (int)entry * 512;
        var dataAt = bitmapAt + 512;
        // qemu's vpc driver marks every sector of a new block present (bitmap all 0xFF, data zero-filled); tapdisk on
        // LVM sets only the written sectors. Make it look like tapdisk: keep sectors 16..23, clear the rest.
        Assert.All(bytes.AsSpan(bitmapAt, 512).ToArray(), b => Assert.Equal(0xFF, b));
        bytes.AsSpan(bitmapAt, 512).Clear();
        bytes[bitmapAt + 2] = 0xFF;

        // Stale junk where bits are now clear (before and after the written sectors), as on a reused LV extent.
        bytes.AsSpan(dataAt, 8192).Fill(0xA5);
        bytes.AsSpan(dataAt + 12288, 65536).Fill(0x5A);
        File.WriteAllBytes(vhd, bytes);
        var before = Repo.Sha256File(vhd);

        using var file = FileBlockSource.Open(vhd);
        var content = new VhdBlockSource(VhdImage.Open(file));
        var guest = new byte[12288 + 65536];
        content.ReadExactlyAt(2 << 20, guest);
        Assert.All(guest.AsSpan(0, 8192).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(data.AsSpan((2 << 20) + 8192, 4096).ToArray(), guest.AsSpan(8192, 4096).ToArray());
        Assert.All(guest.AsSpan(12288).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(expected, VhdTestSupport.Sha256(content));
        Assert.Equal(before, Repo.Sha256File(vhd));
    }

    [RealFact("qemu-img")]
    public void Killed_footer_opens_through_the_copy_at_offset_zero()
    {
        var raw = RandomRaw(8L << 20, 5);
        var vhd = Path.Combine(_dir, "killed.vhd");
        Repo.Run("qemu-img", $"convert -f raw -O vpc \"{raw}\" \"{vhd}\"");
        var expected = QemuRawSha(vhd);
        using (var fs = new FileStream(vhd, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Seek(-512, SeekOrigin.End);
            fs.Write(Enumerable.Repeat((byte)0xC7, 512).ToArray());
        }

        using var file = FileBlockSource.Open(vhd);
        var image = VhdImage.Open(file);
        Assert.Equal(VhdFooterSource.Copy, image.Info.FooterSource);
        var killed = Assert.Single(image.Findings, f => f.Code == "VHD_FOOTER_KILLED");
        Assert.Equal(file.LengthBytes - 512, killed.OffsetBytes);
        Assert.True(image.CanRead);
        Assert.Equal(expected, VhdTestSupport.Sha256(new VhdBlockSource(image)));
    }
}
