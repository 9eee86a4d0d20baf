// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Export;
using VRescue.Storage;
using VRescue.Storage.Output;
using VRescue.Storage.Vhd;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Export;

/// <summary>Output writers, names and the unreadable-range view, without fixtures.</summary>
public sealed class ExportUnitTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-export-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Guest(int sizeBytes)
    {
        var data = new byte[sizeBytes];
        var rng = new Random(42);
        rng.NextBytes(data.AsSpan(3 * 512, 700));              // block 0, partial
        rng.NextBytes(data.AsSpan((2 * MiB) + 4096, 2 * MiB - 4096)); // block 1, tail
        data[^1] = 7;                                           // last sector of the last (short) block
        return data;
    }

    private static void WriteVhd(string path, byte[] guest)
    {
        using var w = VhdDynamicWriter.Create(path, guest.Length, Guid.Parse("11111111-2222-4333-8444-555555555555"), DateTimeOffset.FromUnixTimeSeconds(1700000000));
        for (var b = 0; b * VhdDynamicWriter.BlockSizeBytes < guest.Length; b++)
        {
            var off = b * VhdDynamicWriter.BlockSizeBytes;
            w.WriteBlock(b, guest.AsSpan(off, Math.Min(VhdDynamicWriter.BlockSizeBytes, guest.Length - off)));
        }

        w.Commit();
    }

    [Fact]
    public void Vhd_writer_output_opens_cleanly_and_reads_back_the_guest_bytes()
    {
        var guest = Guest(7 * MiB);
        var path = Path.Combine(_dir, "w.vhd");
        WriteVhd(path, guest);
        using var file = FileBlockSource.Open(path);
        var image = VhdImage.Open(file);
        Assert.DoesNotContain(image.Findings, f => f.Severity >= VRescue.Formats.Common.Severity.Warning);
        Assert.Equal(VhdDiskType.Dynamic, image.Footer!.DiskType);
        Assert.Equal(3, image.Info.AllocatedBlockCount);          // blocks 0, 1 and 3; block 2 is all zeros
        Assert.True(image.Info.BatmapUsable);
        Assert.Equal(0, (image.DataOffsetBytes(0)!.Value) % 4096);
        var back = new byte[guest.Length];
        new VhdBlockSource(image).ReadExactlyAt(0, back);
        Assert.Equal(SHA256.HashData(guest), SHA256.HashData(back));
        Assert.Empty(Directory.GetFiles(_dir, ".*"));
    }

    [RealFact("qemu-img")]
    public void Vhd_writer_output_reads_identically_through_qemu_img()
    {
        var guest = Guest(7 * MiB);
        var path = Path.Combine(_dir, "q.vhd");
        WriteVhd(path, guest);
        var raw = Path.Combine(_dir, "q.raw");
        Repo.Run("qemu-img", $"convert -f vpc -O raw {path} {raw}");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(guest)), Repo.Sha256File(raw));
    }

    [Fact]
    public void Sparse_raw_writer_leaves_zero_ranges_as_holes_and_renames_only_on_commit()
    {
        var guest = Guest(7 * MiB);
        var path = Path.Combine(_dir, "s.raw");
        using (var w = SparseRawWriter.Create(path, guest.Length))
        {
            w.Write(0, guest);
            Assert.False(File.Exists(path));
            Assert.True(w.WrittenBytes < guest.Length / 2);
            w.Commit();
        }

        Assert.Equal(guest, File.ReadAllBytes(path));
        using (var w = SparseRawWriter.Create(Path.Combine(_dir, "abandoned.raw"), 4096))
        {
            w.Write(0, new byte[] { 1, 2, 3 });
        }

        Assert.Single(Directory.GetFiles(_dir));
    }

    [Theory]
    [InlineData("../../etc/passwd", "etc_passwd")]
    [InlineData("db & <cache> disk", "db_cache_disk")]
    [InlineData("Größe – データ ✓", "Größe_データ")]
    [InlineData("/", "")]
    [InlineData("..", "")]
    [InlineData("a\0b\nc\\d", "a_b_c_d")]
    public void Names_are_sanitised_into_one_path_component(string label, string expected)
    {
        var uuid = Guid.Parse("d4e5f6a7-0001-4b8c-9d0e-1f2a3b4c5d6e");
        Assert.Equal(expected, ExportNames.SanitiseLabel(label));
        var name = ExportNames.FileName(uuid, label, "raw");
        Assert.StartsWith(uuid.ToString(), name);
        Assert.Equal(_dir, Path.GetDirectoryName(ExportNames.PathInside(_dir, name)));
    }

    [Fact]
    public void Long_names_are_cut_to_the_byte_limit()
    {
        var label = string.Concat(Enumerable.Repeat("日本語", 100));
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(ExportNames.SanitiseLabel(label)) <= ExportNames.MaxLabelBytes);
        Assert.Throws<ArgumentException>(() => ExportNames.PathInside(_dir, "../x"));
    }

    [Fact]
    public void Unreadable_tracking_source_zero_fills_and_reports_the_failed_pieces()
    {
        var inner = new MemoryBlockSource(Enumerable.Repeat((byte)9, 64 * 1024).ToArray(), "mem");
        var truncated = new ExtentLikeTruncated(inner, 40 * 1024);
        var t = new UnreadableTrackingSource(truncated);
        var buffer = new byte[64 * 1024];
        var before = UnreadableTrackingSource.ThreadFailures;
        Assert.Equal(buffer.Length, t.ReadAt(0, buffer));
        Assert.True(UnreadableTrackingSource.ThreadFailures > before);
        Assert.All(buffer[..(40 * 1024)], b => Assert.Equal(9, b));
        Assert.All(buffer[(40 * 1024)..], b => Assert.Equal(0, b));
        Assert.Equal([new ByteRange(40 * 1024, 24 * 1024)], t.Unreadable);
    }

    /// <summary>Claims a length but throws past <c>readable</c>, like an LV whose extents run past a truncated image.</summary>
    private sealed class ExtentLikeTruncated(IBlockSource inner, long readable) : IBlockSource
    {
        public string Name => inner.Name;

        public long LengthBytes => inner.LengthBytes;

        public int ReadAt(long offsetBytes, Span<byte> buffer)
        {
            if (offsetBytes + buffer.Length > readable)
            {
                throw new SourceReadException(Name, offsetBytes, buffer.Length, "beyond the end of the image");
            }

            return inner.ReadAt(offsetBytes, buffer);
        }
    }

    [Fact]
    public void Differencing_writer_keeps_clear_bits_clear_and_zeroes_their_stale_bytes()
    {
        var parentUuid = Guid.Parse("aaaaaaaa-2222-4333-8444-555555555555");
        var path = Path.Combine(_dir, "child.vhd");
        var bitmap = new byte[512];
        VhdBitmap.Set(bitmap, 1);
        VhdBitmap.Set(bitmap, 3);
        var data = Enumerable.Repeat((byte)0xC7, 8 * 512).ToArray();
        data.AsSpan(3 * 512, 512).Clear();
        using (var w = VhdDynamicWriter.CreateDifferencing(path, 4 * MiB, new VhdParentLink(parentUuid, 1234, "parent.vhd"), Guid.NewGuid()))
        {
            Assert.True(w.WriteDifferencingBlock(0, data, bitmap));
            Assert.False(w.WriteDifferencingBlock(1, data, new byte[512]));
            w.Commit();
        }

        using var file = FileBlockSource.Open(path);
        var image = VhdImage.Open(file);
        Assert.True(image.CanRead);
        Assert.Equal(VhdDiskType.Differencing, image.Footer!.DiskType);
        Assert.Equal(parentUuid, image.Header!.ParentUuid);
        Assert.Equal(1234u, image.Header.ParentTimestampSeconds);
        Assert.Equal("parent.vhd", image.Header.ParentUnicodeName);
        Assert.Equal(["file://./parent.vhd", ".\\parent.vhd", ".\\parent.vhd"], image.Info.Locators.Where(l => l.Text is not null).Select(l => l.Text));
        Assert.False(image.IsBlockFull(0));
        Assert.Null(image.DataOffsetBytes(1));
        Assert.Equal(bitmap, image.ReadSectorBitmap(0)[..512]);
        var stored = new byte[8 * 512];
        file.ReadAt(image.DataOffsetBytes(0)!.Value, stored);
        Assert.All(new[] { 0, 2, 4, 5, 6, 7 }, s => Assert.DoesNotContain(stored.AsSpan(s * 512, 512).ToArray(), b => b != 0));
        Assert.All(stored.AsSpan(512, 512).ToArray(), b => Assert.Equal(0xC7, b));
        Assert.All(stored.AsSpan(3 * 512, 512).ToArray(), b => Assert.Equal(0, b));
    }
}
