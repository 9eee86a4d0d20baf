// SPDX-License-Identifier: MIT
using Microsoft.Win32.SafeHandles;
using VRescue.Storage;

namespace VRescue.Recovery.Partitions;

/// <summary>Why a repair was not done. <see cref="Code"/> is stable.</summary>
public sealed class PartitionRepairRefusedException(string code, string message) : InvalidOperationException(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// The file a repair writes: never the source (compared by device and inode, so symlinks, hard links and two
/// names of one block device are caught), either an existing copy or a sparse copy made here first.
/// </summary>
internal static class RepairTarget
{
    private const int BlockBytes = 64 * 1024;
    private const int ChunkBytes = 8 << 20;

    /// <summary>Throws <see cref="PartitionRepairRefusedException"/> when <paramref name="target"/> is <paramref name="source"/>.</summary>
    internal static void EnsureNotSource(string source, string target)
    {
        if (!File.Exists(target) && !Path.Exists(target))
        {
            var parent = Path.GetDirectoryName(Path.GetFullPath(target));
            if (parent is not null && Directory.Exists(parent))
            {
                return;
            }

            throw new PartitionRepairRefusedException("REPAIR_TARGET_DIR_MISSING", $"the directory of {target} does not exist");
        }

        try
        {
            TargetGuard.EnsureNotSource(target, [source]);
        }
        catch (TargetIsSourceException e)
        {
            throw new PartitionRepairRefusedException("REPAIR_TARGET_IS_SOURCE", $"{e.Message}; repair writes only into a copy");
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> into the new file <paramref name="target"/> without writing zero blocks, so
    /// the copy is sparse (holes where the source has zeros or holes). Written to a temporary name first.
    /// </summary>
    internal static long SparseCopy(IBlockSource source, string target, CancellationToken cancel)
    {
        var temporary = target + ".vrescue-partial";
        long written = 0;
        try
        {
            using (var handle = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                RandomAccess.SetLength(handle, source.LengthBytes);
                var buffer = GC.AllocateUninitializedArray<byte>(ChunkBytes);
                for (long offset = 0; offset < source.LengthBytes; offset += ChunkBytes)
                {
                    cancel.ThrowIfCancellationRequested();
                    var n = (int)Math.Min(ChunkBytes, source.LengthBytes - offset);
                    source.ReadExactlyAt(offset, buffer.AsSpan(0, n));
                    written += WriteNonZeroRuns(handle, buffer.AsSpan(0, n), offset);
                }

                RandomAccess.FlushToDisk(handle);
            }

            File.Move(temporary, target);
            return written;
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static long WriteNonZeroRuns(SafeFileHandle handle, ReadOnlySpan<byte> chunk, long baseOffset)
    {
        long written = 0;
        var runStart = -1;
        var blocks = (chunk.Length + BlockBytes - 1) / BlockBytes;
        for (var i = 0; i <= blocks; i++)
        {
            var b = Math.Min(i * BlockBytes, chunk.Length);
            var isData = i < blocks && chunk.Slice(b, Math.Min(BlockBytes, chunk.Length - b)).ContainsAnyExcept((byte)0);
            if (isData && runStart < 0)
            {
                runStart = b;
            }
            else if (!isData && runStart >= 0)
            {
                var end = Math.Min(b, chunk.Length);
                RandomAccess.Write(handle, chunk[runStart..end], baseOffset + runStart);
                written += end - runStart;
                runStart = -1;
            }
        }

        return written;
    }
}
