// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using VRescue.Storage.Output;

namespace VRescue.Storage.Tests.Output;

/// <summary>
/// OutputFile past the background-flush threshold: parallel aligned (O_DIRECT) and unaligned (buffered) writes while
/// fdatasync runs behind them, then commit; or abandonment while a flush may still run.
/// </summary>
public sealed class OutputFileTests : IDisposable
{
    private const int PieceBytes = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-outputfile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Parallel_writes_across_background_flushes_commit_exactly_what_was_written()
    {
        var pieces = (int)(OutputFile.BackgroundFlushEveryBytes * 5 / 4 / PieceBytes);
        var path = Path.Combine(_dir, "big.raw");
        using (var file = OutputFile.Create(path))
        {
            Parallel.For(0, pieces, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                var buffer = AlignedBuffer(out var handle);
                try
                {
                    // Odd pieces start one byte past the 4 KiB boundary in memory, so the kernel refuses them for O_DIRECT
                    // and they take the buffered descriptor.
                    var data = i % 2 == 0 ? buffer.Span[..PieceBytes] : buffer.Span[1..(PieceBytes + 1)];
                    Fill(data, i);
                    file.Write((long)i * PieceBytes, data);
                }
                finally
                {
                    handle.Free();
                }
            });
            file.Commit();
        }

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var expected = new byte[PieceBytes];
        for (var i = 0; i < pieces; i++)
        {
            Fill(expected, i);
            sha.AppendData(expected);
        }

        using var stream = File.OpenRead(path);
        Assert.Equal(Convert.ToHexString(sha.GetHashAndReset()), Convert.ToHexString(SHA256.HashData(stream)));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Abandoned_file_is_deleted_even_with_a_flush_running()
    {
        var path = Path.Combine(_dir, "abandoned.raw");
        var data = new byte[PieceBytes];
        using (var file = OutputFile.Create(path))
        {
            for (long written = 0; written <= OutputFile.BackgroundFlushEveryBytes; written += PieceBytes)
            {
                file.Write(written, data);
            }
        }

        Assert.Empty(Directory.GetFiles(_dir));
    }

    private static void Fill(Span<byte> span, int piece)
    {
        var words = MemoryMarshal.Cast<byte, int>(span);
        for (var w = 0; w < words.Length; w++)
        {
            words[w] = (piece * 7919) ^ (w * 31);
        }
    }

    private static Memory<byte> AlignedBuffer(out GCHandle handle)
    {
        var array = new byte[PieceBytes + OutputFile.DirectAlignmentBytes + 1];
        handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        var skip = (int)((OutputFile.DirectAlignmentBytes - (handle.AddrOfPinnedObject() % OutputFile.DirectAlignmentBytes)) % OutputFile.DirectAlignmentBytes);
        return array.AsMemory(skip);
    }
}
