// SPDX-License-Identifier: MIT
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace VRescue.Storage.Scanning;

/// <summary>What a sector looked like to the scanner. The sector is only a candidate; the caller decodes it.</summary>
public enum DiskSignatureKind
{
    /// <summary>"LABELONE" at byte 0: an LVM2 label sector (lvm2 lib/label/label.h).</summary>
    LvmLabel,

    /// <summary>FMTT_MAGIC at byte 4: an LVM2 mda_header (lvm2 lib/format_text/layout.h).</summary>
    LvmMdaHeader,

    /// <summary>0xEF53 at byte 0x38 with sane counts: an ext2/3/4 superblock, primary or backup.</summary>
    ExtSuperblock,

    /// <summary>"SWAPSPACE2" or "SWAP-SPACE" in the last 10 bytes: the end of a Linux swap header page.</summary>
    LinuxSwap,

    /// <summary>A FAT12/16/32 boot sector (jump, bytes per sector, "FAT" type string, 0x55AA).</summary>
    FatBootSector,

    /// <summary>"EFI PART" at byte 0: a GPT header (UEFI 2.10 section 5.3.2), at any LBA.</summary>
    GptHeader,
}

/// <summary>One candidate sector.</summary>
/// <param name="Kind">What matched.</param>
/// <param name="OffsetBytes">Absolute offset of the 512-byte sector that matched.</param>
public readonly record struct DiskSignatureHit(DiskSignatureKind Kind, long OffsetBytes);

/// <summary>A range the source could not read; the scan went on after it.</summary>
public readonly record struct UnreadableRange(long OffsetBytes, long LengthBytes, string Message);

/// <summary>Progress of a running scan.</summary>
public readonly record struct DiskScanProgress(long ScannedBytes, long TotalBytes, int Hits, TimeSpan Elapsed);

/// <summary>Tuning for <see cref="DiskSignatureScanner.Scan"/>; the defaults suit disks and images.</summary>
public sealed record DiskScanOptions
{
    /// <summary>Bytes per read (a multiple of 512; 4 MiB, like dd bs=4M, keeps a disk streaming and the buffers in cache).</summary>
    public int BufferBytes { get; init; } = 4 << 20;

    /// <summary>Buffers in flight: one being scanned, the rest being filled by the read-ahead thread.</summary>
    public int BufferCount { get; init; } = 3;

    /// <summary>First byte to scan (rounded down to a sector).</summary>
    public long StartBytes { get; init; }

    /// <summary>End of the scan (exclusive); null for the end of the source.</summary>
    public long? EndBytes { get; init; }

    /// <summary>Hits kept at most; a disk full of guest filesystems cannot exhaust memory.</summary>
    public int MaxHits { get; init; } = 200_000;

    /// <summary>How often progress is reported.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>What a scan saw.</summary>
/// <param name="Hits">Candidate sectors in disk order.</param>
/// <param name="ScannedBytes">Bytes read and searched.</param>
/// <param name="Elapsed">Wall time of the scan.</param>
/// <param name="HitLimitReached">True when <see cref="DiskScanOptions.MaxHits"/> cut the list short.</param>
/// <param name="Unreadable">Ranges that failed to read (bad sectors); they were skipped.</param>
public sealed record DiskScanResult(
    IReadOnlyList<DiskSignatureHit> Hits,
    long ScannedBytes,
    TimeSpan Elapsed,
    bool HitLimitReached,
    IReadOnlyList<UnreadableRange> Unreadable)
{
    /// <summary>Read throughput in bytes per second.</summary>
    public double BytesPerSecond => Elapsed.TotalSeconds > 0 ? ScannedBytes / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Searches a whole disk for the signatures partitions start with, sector by sector. Every signature it knows
/// sits at a fixed place in a 512-byte sector, so each sector costs a handful of loads from two cache lines
/// (bytes 0..0x60 and 502..511) instead of a byte-wise search; the disk is read sequentially in large buffers
/// by a read-ahead thread while the previous buffer is searched, which keeps the scan at the speed of the read.
/// Read-only: only <see cref="IBlockSource.ReadAt"/> is called.
/// </summary>
public static class DiskSignatureScanner
{
    public const int SectorBytes = 512;

    // Magic values as the little-endian UInt64 / UInt16 a load at their offset returns.
    private static readonly ulong s_labelOne = BinaryPrimitives.ReadUInt64LittleEndian("LABELONE"u8);
    private static readonly ulong s_efiPart = BinaryPrimitives.ReadUInt64LittleEndian("EFI PART"u8);
    private static readonly ulong s_mdaMagicHead = BinaryPrimitives.ReadUInt64LittleEndian(" LVM2 x[5A%r0N*>"u8);
    private static readonly ulong s_mdaMagicTail = BinaryPrimitives.ReadUInt64LittleEndian(" LVM2 x[5A%r0N*>"u8[8..]);
    private static readonly ulong s_swapTail = BinaryPrimitives.ReadUInt64LittleEndian("APSPACE2"u8);
    private static readonly ulong s_swapOldTail = BinaryPrimitives.ReadUInt64LittleEndian("AP-SPACE"u8);

    // ext superblock fields checked in the scan (Linux Documentation/filesystems/ext4/super.rst).
    private const int ExtInodesCount = 0x0, ExtBlocksCountLo = 0x4, ExtLogBlockSize = 0x18, ExtBlocksPerGroup = 0x20;
    private const int ExtInodesPerGroup = 0x28, ExtMagic = 0x38, ExtState = 0x3A, ExtErrors = 0x3C, ExtRevLevel = 0x4C;

    // FAT boot sector (Microsoft FAT specification, BPB): BytsPerSec at 0x0B, BS_FilSysType at 0x36 (FAT12/16)
    // or 0x52 (FAT32), signature 0x55AA at 510.
    private const int FatBytesPerSector = 0x0B, FatType16 = 0x36, FatType32 = 0x52, BootSignature = 510;
    private static readonly uint s_fatAscii = BinaryPrimitives.ReadUInt32LittleEndian("FAT1"u8);
    private static readonly uint s_fat32Ascii = BinaryPrimitives.ReadUInt32LittleEndian("FAT3"u8);

    /// <summary>
    /// Scans <paramref name="source"/> from <see cref="DiskScanOptions.StartBytes"/> to the end. Unreadable
    /// buffers are recorded and skipped; cancellation throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public static DiskScanResult Scan(IBlockSource source, DiskScanOptions? options = null,
        IProgress<DiskScanProgress>? progress = null, CancellationToken cancel = default)
    {
        options ??= new DiskScanOptions();
        if (options.BufferBytes < SectorBytes || options.BufferBytes % SectorBytes != 0 || options.BufferCount < 2)
        {
            throw new ArgumentException("buffer size must be a positive multiple of 512 and at least two buffers are needed", nameof(options));
        }

        var start = Math.Max(0, options.StartBytes) / SectorBytes * SectorBytes;
        var end = Math.Min(options.EndBytes ?? source.LengthBytes, source.LengthBytes);
        var clock = Stopwatch.StartNew();
        var hits = new List<DiskSignatureHit>();
        var unreadable = new List<UnreadableRange>();
        var limitReached = false;
        long scanned = 0;
        if (end - start < SectorBytes)
        {
            return new DiskScanResult(hits, 0, clock.Elapsed, false, unreadable);
        }

        var buffers = new byte[options.BufferCount][];
        for (var i = 0; i < buffers.Length; i++)
        {
            buffers[i] = ArrayPool<byte>.Shared.Rent(options.BufferBytes);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var free = new BlockingCollection<int>(options.BufferCount);
        using var filled = new BlockingCollection<Chunk>(options.BufferCount);
        for (var i = 0; i < buffers.Length; i++)
        {
            free.Add(i);
        }

        var reader = new Thread(() => ReadAhead(source, start, end, options.BufferBytes, buffers, free, filled, linked.Token))
        {
            IsBackground = true,
            Name = "vrescue-scan-read",
        };
        reader.Start();
        var lastReport = TimeSpan.Zero;
        try
        {
            foreach (var chunk in filled.GetConsumingEnumerable(linked.Token))
            {
                if (chunk.Error is { } error)
                {
                    unreadable.Add(new UnreadableRange(chunk.OffsetBytes, chunk.LengthBytes, error.Message));
                }
                else if (!limitReached)
                {
                    limitReached = !ScanBuffer(buffers[chunk.BufferIndex].AsSpan(0, chunk.LengthBytes), chunk.OffsetBytes, hits, options.MaxHits);
                }

                scanned += chunk.LengthBytes;
                free.Add(chunk.BufferIndex, linked.Token);
                if (progress is not null && clock.Elapsed - lastReport >= options.ProgressInterval)
                {
                    lastReport = clock.Elapsed;
                    progress.Report(new DiskScanProgress(scanned, end - start, hits.Count, clock.Elapsed));
                }
            }
        }
        finally
        {
            linked.Cancel();
            reader.Join();
            foreach (var b in buffers)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }

        cancel.ThrowIfCancellationRequested();
        progress?.Report(new DiskScanProgress(scanned, end - start, hits.Count, clock.Elapsed));
        return new DiskScanResult(hits, scanned, clock.Elapsed, limitReached, unreadable);
    }

    private readonly record struct Chunk(int BufferIndex, long OffsetBytes, int LengthBytes, Exception? Error);

    private static void ReadAhead(IBlockSource source, long start, long end, int bufferBytes, byte[][] buffers,
        BlockingCollection<int> free, BlockingCollection<Chunk> filled, CancellationToken cancel)
    {
        try
        {
            for (var offset = start; offset < end;)
            {
                var index = free.Take(cancel);
                var want = (int)Math.Min(bufferBytes, end - offset);
                var got = 0;
                Exception? error = null;
                try
                {
                    while (got < want)
                    {
                        var n = source.ReadAt(offset + got, buffers[index].AsSpan(got, want - got));
                        if (n <= 0)
                        {
                            break;
                        }

                        got += n;
                    }
                }
                catch (IOException e)
                {
                    error = e;
                    got = want;
                }

                // Only whole sectors are searched; a partial last sector cannot hold a signature we use.
                var length = error is null ? got / SectorBytes * SectorBytes : got;
                if (length > 0)
                {
                    filled.Add(new Chunk(index, offset, length, error), cancel);
                }
                else
                {
                    free.Add(index, cancel);
                }

                if (got < want || length == 0)
                {
                    break;
                }

                offset += got;
            }
        }
        catch (OperationCanceledException)
        {
            // The consumer stopped (cancelled or failed); nothing more to read.
        }
        finally
        {
            filled.CompleteAdding();
        }
    }

    /// <summary>
    /// Classifies each whole sector of <paramref name="buffer"/> (which starts at absolute <paramref name="baseOffset"/>)
    /// and appends hits. Returns false when <paramref name="maxHits"/> was reached.
    /// </summary>
    // Fully optimised from the first call: a CLI scan is over before tiered JIT would promote the loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool ScanBuffer(ReadOnlySpan<byte> buffer, long baseOffset, List<DiskSignatureHit> hits, int maxHits)
    {
        var sectors = buffer.Length / SectorBytes;
        for (var i = 0; i < sectors; i++)
        {
            var s = buffer.Slice(i * SectorBytes, SectorBytes);
            var head = BinaryPrimitives.ReadUInt64LittleEndian(s);
            var kind = Classify(s, head);
            if (kind is { } k)
            {
                if (hits.Count >= maxHits)
                {
                    return false;
                }

                hits.Add(new DiskSignatureHit(k, baseOffset + ((long)i * SectorBytes)));
            }
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DiskSignatureKind? Classify(ReadOnlySpan<byte> s, ulong head)
    {
        if (head == 0 && BinaryPrimitives.ReadUInt64LittleEndian(s[0x30..]) == 0 && BinaryPrimitives.ReadUInt64LittleEndian(s[504..]) == 0 &&
            BinaryPrimitives.ReadUInt64LittleEndian(s[4..]) == 0)
        {
            return null; // The common case on a disk: a zero sector start and end.
        }

        if (head == s_labelOne)
        {
            return DiskSignatureKind.LvmLabel;
        }

        if (head == s_efiPart)
        {
            return DiskSignatureKind.GptHeader;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(s[4..]) == s_mdaMagicHead && BinaryPrimitives.ReadUInt64LittleEndian(s[12..]) == s_mdaMagicTail)
        {
            return DiskSignatureKind.LvmMdaHeader;
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(s[ExtMagic..]) == 0xEF53 && LooksLikeExtSuperblock(s))
        {
            return DiskSignatureKind.ExtSuperblock;
        }

        var tail = BinaryPrimitives.ReadUInt64LittleEndian(s[504..]);
        if ((tail == s_swapTail || tail == s_swapOldTail) && s[502] == (byte)'S' && s[503] == (byte)'W')
        {
            return DiskSignatureKind.LinuxSwap;
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(s[BootSignature..]) == 0xAA55 && LooksLikeFatBootSector(s))
        {
            return DiskSignatureKind.FatBootSector;
        }

        return null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool LooksLikeExtSuperblock(ReadOnlySpan<byte> s)
    {
        var logBlock = BinaryPrimitives.ReadUInt32LittleEndian(s[ExtLogBlockSize..]);
        var blocksPerGroup = BinaryPrimitives.ReadUInt32LittleEndian(s[ExtBlocksPerGroup..]);
        return logBlock <= 6
            && BinaryPrimitives.ReadUInt32LittleEndian(s[ExtInodesCount..]) != 0
            && BinaryPrimitives.ReadUInt32LittleEndian(s[ExtBlocksCountLo..]) != 0
            && BinaryPrimitives.ReadUInt32LittleEndian(s[ExtInodesPerGroup..]) != 0
            && blocksPerGroup != 0 && blocksPerGroup <= 8u * (1024u << (int)logBlock)
            && BinaryPrimitives.ReadUInt16LittleEndian(s[ExtState..]) <= 7
            && BinaryPrimitives.ReadUInt16LittleEndian(s[ExtErrors..]) <= 3
            && BinaryPrimitives.ReadUInt32LittleEndian(s[ExtRevLevel..]) <= 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool LooksLikeFatBootSector(ReadOnlySpan<byte> s)
    {
        if (s[0] is not (0xEB or 0xE9))
        {
            return false;
        }

        var bytesPerSector = BinaryPrimitives.ReadUInt16LittleEndian(s[FatBytesPerSector..]);
        if (bytesPerSector is not (512 or 1024 or 2048 or 4096))
        {
            return false;
        }

        return BinaryPrimitives.ReadUInt32LittleEndian(s[FatType16..]) == s_fatAscii
            || BinaryPrimitives.ReadUInt32LittleEndian(s[FatType32..]) == s_fat32Ascii;
    }
}
