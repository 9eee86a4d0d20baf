// SPDX-License-Identifier: MIT
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage.Output;

/// <summary>
/// A new output file written under a temporary name in the target directory and renamed to its final name only by
/// <see cref="Commit"/>, so an interrupted export never leaves a file that looks complete. Disposing without a commit
/// deletes the temporary file. Writes are positional and may come from several threads.
/// On Linux a second descriptor opened with O_DIRECT takes the writes that are 4 KiB-aligned in file offset, length and
/// memory (whole data blocks from pinned, aligned buffers): they skip the page cache, which saves a copy per byte and
/// the flush of gigabytes of dirty pages at <see cref="Commit"/> (the file system may refuse O_DIRECT, e.g. tmpfs;
/// then every write is buffered). Everything else (headers, bitmap sectors, a short tail) goes through the buffered one.
/// </summary>
public sealed class OutputFile : IDisposable
{
    /// <summary>Offset, length and address alignment for the O_DIRECT path (the page size; covers 512e and 4Kn disks).</summary>
    public const int DirectAlignmentBytes = 4096;

    /// <summary>
    /// Bytes written between background fdatasync(2) calls. O_DIRECT writes still sit in the device's volatile cache
    /// (a virtual disk's host page cache, a drive's write cache) until a flush; flushing as the export goes overlaps that
    /// work with reading and hashing instead of paying all of it in <see cref="Commit"/>.
    /// </summary>
    public const long BackgroundFlushEveryBytes = 256L << 20;

    private readonly SafeFileHandle _handle;
    private readonly Lock _flushStart = new();
    private Task _backgroundFlush = Task.CompletedTask;
    private long _unflushedBytes;
    private const int MaxDirectRefusals = 16;
    private readonly SafeFileHandle? _directToClose;
    private SafeFileHandle? _direct;
    private int _directRefusals;
    private bool _committed;

    private OutputFile(string finalPath, string tempPath, SafeFileHandle handle, SafeFileHandle? direct)
    {
        FinalPath = finalPath;
        TempPath = tempPath;
        _handle = handle;
        _direct = direct;
        _directToClose = direct;
    }

    /// <summary>True while aligned writes bypass the page cache.</summary>
    public bool UsesDirectIo => Volatile.Read(ref _direct) is not null;

    /// <summary>Where the file lands on <see cref="Commit"/>.</summary>
    public string FinalPath { get; }

    /// <summary>The hidden name it is written under until then (same directory, so the rename is atomic).</summary>
    public string TempPath { get; }

    /// <summary>Creates an empty temporary file next to <paramref name="finalPath"/>.</summary>
    public static OutputFile Create(string finalPath)
    {
        var full = Path.GetFullPath(finalPath);
        var dir = Path.GetDirectoryName(full) ?? throw new ArgumentException("no directory in output path", nameof(finalPath));
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.vrescue-tmp-{Environment.ProcessId}");
        var handle = File.OpenHandle(temp, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, FileOptions.None);
        return new OutputFile(full, temp, handle, OpenDirect(temp));
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offsetBytes"/>. Offset- and length-aligned writes try the O_DIRECT
    /// descriptor first; the kernel refuses (EINVAL) a buffer that is not 4 KiB-aligned in memory, and such a write is
    /// simply repeated through the buffered descriptor (after repeated refusals direct I/O is given up).
    /// </summary>
    public void Write(long offsetBytes, ReadOnlySpan<byte> data)
    {
        if (_direct is { } direct && offsetBytes % DirectAlignmentBytes == 0 && data.Length % DirectAlignmentBytes == 0 && !data.IsEmpty)
        {
            try
            {
                RandomAccess.Write(direct, data, offsetBytes);
                FlushInBackgroundNowAndThen(data.Length);
                return;
            }
            catch (IOException)
            {
                if (Interlocked.Increment(ref _directRefusals) == MaxDirectRefusals)
                {
                    Interlocked.CompareExchange(ref _direct, null, direct);
                }
            }
        }

        RandomAccess.Write(_handle, data, offsetBytes);
        FlushInBackgroundNowAndThen(data.Length);
    }

    private void FlushInBackgroundNowAndThen(int writtenBytes)
    {
        if (Interlocked.Add(ref _unflushedBytes, writtenBytes) < BackgroundFlushEveryBytes)
        {
            return;
        }

        lock (_flushStart)
        {
            if (_backgroundFlush.IsCompleted && Interlocked.Read(ref _unflushedBytes) >= BackgroundFlushEveryBytes)
            {
                Interlocked.Exchange(ref _unflushedBytes, 0);
                var previous = _backgroundFlush;
                _backgroundFlush = Task.Run(() =>
                {
                    previous.GetAwaiter().GetResult(); // surface an earlier flush failure at Commit
                    RandomAccess.FlushToDisk(_handle);
                });
            }
        }
    }

    public void SetLength(long lengthBytes) => RandomAccess.SetLength(_handle, lengthBytes);

    /// <summary>Flushes, closes and renames the file to <see cref="FinalPath"/> (replacing an earlier export of the same name).</summary>
    public void Commit()
    {
        _backgroundFlush.GetAwaiter().GetResult();
        _directToClose?.Dispose();
        RandomAccess.FlushToDisk(_handle);
        _handle.Dispose();
        File.Move(TempPath, FinalPath, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        try
        {
            _backgroundFlush.Wait();
        }
        catch (AggregateException)
        {
            // The file is being abandoned; its flush failing changes nothing.
        }

        _directToClose?.Dispose();
        _handle.Dispose();
        try
        {
            File.Delete(TempPath);
        }
        catch (IOException)
        {
            // Best effort: the temporary name marks it as incomplete anyway.
        }
    }

    /// <summary>A write-only O_DIRECT descriptor on the temporary file, or null (VRESCUE_NO_DIRECT_IO=1, not Linux, refused).</summary>
    private static SafeFileHandle? OpenDirect(string path) =>
        Environment.GetEnvironmentVariable("VRESCUE_NO_DIRECT_IO") == "1" ? null : DirectIo.Open(path, DirectIo.WriteOnly);
}
