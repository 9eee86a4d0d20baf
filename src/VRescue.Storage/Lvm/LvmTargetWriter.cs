// SPDX-License-Identifier: MIT
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage.Lvm;

/// <summary>One write into a target: absolute offset on the target disk, bytes, and what they are (for the report).</summary>
public sealed record TargetWrite(long OffsetBytes, byte[] Bytes, string What);

/// <summary>
/// Writes repaired structures into a target that is never the source: an existing copy the user made, or a new
/// sparse copy made here first (only non-zero 1 MiB chunks are written, so the copy stays sparse).
/// </summary>
public static class LvmTargetWriter
{
    private const int CopyChunkBytes = 1 << 20;

    /// <summary>
    /// Makes <paramref name="target"/> ready: checks it is not any of <paramref name="allSourcePaths"/>; when it does not
    /// exist, creates a sparse copy of <paramref name="source"/>; when it exists, requires at least the source's size.
    /// Returns true when a copy was made.
    /// </summary>
    public static bool PrepareTarget(IBlockSource source, string target, IReadOnlyList<string> allSourcePaths,
        Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        TargetGuard.EnsureNotSource(target, allSourcePaths);
        if (File.Exists(target) || target.StartsWith("/dev/", StringComparison.Ordinal))
        {
            using var existing = FileBlockSource.Open(target);
            if (existing.LengthBytes < source.LengthBytes)
            {
                throw new IOException($"target {target} has {existing.LengthBytes} bytes, the source {source.Name} has {source.LengthBytes}: it cannot be a full copy");
            }

            return false;
        }

        using var handle = File.OpenHandle(target, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        RandomAccess.SetLength(handle, source.LengthBytes);
        var buffer = new byte[CopyChunkBytes];
        for (long at = 0; at < source.LengthBytes; at += CopyChunkBytes)
        {
            cancel.ThrowIfCancellationRequested();
            var n = (int)Math.Min(CopyChunkBytes, source.LengthBytes - at);
            source.ReadExactlyAt(at, buffer.AsSpan(0, n));
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                RandomAccess.Write(handle, buffer.AsSpan(0, n), at);
            }

            progress?.Invoke(at + n, source.LengthBytes);
        }

        return true;
    }

    /// <summary>Applies <paramref name="writes"/> to <paramref name="target"/> and flushes it to stable storage.</summary>
    public static void Apply(string target, IReadOnlyList<TargetWrite> writes)
    {
        using SafeFileHandle handle = File.OpenHandle(target, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        foreach (var w in writes)
        {
            RandomAccess.Write(handle, w.Bytes, w.OffsetBytes);
        }

        RandomAccess.FlushToDisk(handle);
    }
}
