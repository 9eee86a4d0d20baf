// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Storage;
using VRescue.Storage.Scanning;

namespace VRescue.Recovery.Tests.Partitions;

public sealed class DiskSignatureScannerTests
{
    private const int MiB = 1 << 20;

    private static byte[] DiskWithEverySignature(out Dictionary<long, DiskSignatureKind> expected)
    {
        var disk = new byte[4 * MiB];
        expected = new Dictionary<long, DiskSignatureKind>();
        // Last sector of the first 1 MiB buffer and first sector of the second: no signature may fall between buffers.
        Encoding.ASCII.GetBytes("LABELONE").CopyTo(disk, MiB - 512);
        expected[MiB - 512] = DiskSignatureKind.LvmLabel;
        Encoding.ASCII.GetBytes(" LVM2 x[5A%r0N*>").CopyTo(disk, MiB + 4);
        disk[MiB] = 1;
        expected[MiB] = DiskSignatureKind.LvmMdaHeader;
        SyntheticDisk.WriteExt(disk, 2 * MiB, 100);
        expected[(2 * MiB) + 1024] = DiskSignatureKind.ExtSuperblock;
        Encoding.ASCII.GetBytes("SWAPSPACE2").CopyTo(disk, (2 * MiB) + 65536 + 4096 - 10);
        expected[(2 * MiB) + 65536 + 4096 - 512] = DiskSignatureKind.LinuxSwap;
        var fat = (3 * MiB) - 512;
        disk[fat] = 0xEB;
        disk[fat + 0x0B] = 0x00;
        disk[fat + 0x0C] = 0x02;
        Encoding.ASCII.GetBytes("FAT32   ").CopyTo(disk, fat + 0x52);
        disk[fat + 510] = 0x55;
        disk[fat + 511] = 0xAA;
        expected[fat] = DiskSignatureKind.FatBootSector;
        Encoding.ASCII.GetBytes("EFI PART").CopyTo(disk, (4 * MiB) - 512);
        expected[(4 * MiB) - 512] = DiskSignatureKind.GptHeader;
        // Near misses: a label not on a sector boundary, ext magic without sane counts.
        Encoding.ASCII.GetBytes("LABELONE").CopyTo(disk, (3 * MiB) + 100);
        disk[(3 * MiB) + 512 + 0x38] = 0x53;
        disk[(3 * MiB) + 512 + 0x39] = 0xEF;
        return disk;
    }

    [Fact]
    public void Scan_finds_each_signature_once_including_at_buffer_boundaries()
    {
        var disk = DiskWithEverySignature(out var expected);
        var result = DiskSignatureScanner.Scan(new MemoryBlockSource(disk), new DiskScanOptions { BufferBytes = MiB });
        Assert.Equal(expected.OrderBy(e => e.Key).Select(e => (e.Value, e.Key)), result.Hits.Select(h => (h.Kind, h.OffsetBytes)));
        Assert.Equal(disk.Length, result.ScannedBytes);
        Assert.False(result.HitLimitReached);
    }

    [Fact]
    public void Scan_reports_progress_and_stops_when_cancelled()
    {
        var disk = new byte[8 * MiB];
        var reports = new List<DiskScanProgress>();
        var progress = new SyncProgress(reports.Add);
        var result = DiskSignatureScanner.Scan(new MemoryBlockSource(disk),
            new DiskScanOptions { BufferBytes = 512 * 1024, ProgressInterval = TimeSpan.Zero }, progress);
        Assert.Equal(8 * MiB, reports[^1].ScannedBytes);
        Assert.Equal(8 * MiB, result.ScannedBytes);

        using var cts = new CancellationTokenSource();
        var cancelling = new SyncProgress(_ => cts.Cancel());
        Assert.ThrowsAny<OperationCanceledException>(() => DiskSignatureScanner.Scan(new MemoryBlockSource(disk),
            new DiskScanOptions { BufferBytes = 512 * 1024, ProgressInterval = TimeSpan.Zero }, cancelling, cts.Token));
    }

    [Fact]
    public void Unreadable_ranges_are_recorded_and_the_scan_goes_on()
    {
        var disk = new byte[4 * MiB];
        Encoding.ASCII.GetBytes("LABELONE").CopyTo(disk, 3 * MiB);
        var source = new FailingSource(new MemoryBlockSource(disk), MiB, 2 * MiB);
        var result = DiskSignatureScanner.Scan(source, new DiskScanOptions { BufferBytes = MiB });
        Assert.Equal([new DiskSignatureHit(DiskSignatureKind.LvmLabel, 3 * MiB)], result.Hits);
        Assert.Equal(MiB, Assert.Single(result.Unreadable).OffsetBytes);
    }

    [Fact]
    public void Hit_limit_bounds_memory_on_a_disk_full_of_signatures()
    {
        var disk = new byte[MiB];
        for (var s = 0; s < disk.Length; s += 512)
        {
            Encoding.ASCII.GetBytes("LABELONE").CopyTo(disk, s);
        }

        var result = DiskSignatureScanner.Scan(new MemoryBlockSource(disk), new DiskScanOptions { MaxHits = 100 });
        Assert.Equal(100, result.Hits.Count);
        Assert.True(result.HitLimitReached);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(513)]
    public void Tiny_and_odd_sized_sources_scan_whole_sectors_only(int length)
    {
        var result = DiskSignatureScanner.Scan(new MemoryBlockSource(new byte[length]));
        Assert.Equal(length / 512 * 512, result.ScannedBytes);
        Assert.Empty(result.Hits);
    }

    private sealed class SyncProgress(Action<DiskScanProgress> report) : IProgress<DiskScanProgress>
    {
        public void Report(DiskScanProgress value) => report(value);
    }

    private sealed class FailingSource(IBlockSource inner, long badStart, long badEnd) : IBlockSource
    {
        public string Name => "failing";

        public long LengthBytes => inner.LengthBytes;

        public int ReadAt(long offsetBytes, Span<byte> buffer)
        {
            if (offsetBytes < badEnd && offsetBytes + buffer.Length > badStart)
            {
                throw new SourceReadException(Name, offsetBytes, buffer.Length, "Input/output error");
            }

            return inner.ReadAt(offsetBytes, buffer);
        }
    }
}
