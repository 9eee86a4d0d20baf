// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage;

/// <summary>
/// An image file or block device opened read-only (evidence is never opened for writing). A read that fails is tried
/// once more with O_DIRECT before it is reported: buffered reads go through the page cache in whole 4 KiB pages, so
/// one bad 512-byte sector would otherwise fail the seven good sectors of its page too (what ddrescue -d avoids).
/// </summary>
public sealed class FileBlockSource : IBlockSource, IDisposable
{
    /// <summary>Offset and length alignment of the direct retry: the logical sector of 512n and 512e disks (a 4Kn
    /// device refuses it with EINVAL, and the buffered error stands).</summary>
    public const int DirectSectorBytes = 512;

    /// <summary>Largest read retried directly (bounds the bounce buffer); larger failing reads are split by callers.</summary>
    public const int MaxDirectRetryBytes = 16 << 20;

    private const int DirectMemoryAlignmentBytes = 4096;

    private readonly SafeFileHandle _handle;
    private readonly Lazy<SafeFileHandle?> _direct;

    private FileBlockSource(string path, SafeFileHandle handle, long lengthBytes)
    {
        Name = path;
        _handle = handle;
        LengthBytes = lengthBytes;
        _direct = new Lazy<SafeFileHandle?>(() => DirectIo.Open(path, DirectIo.ReadOnly), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public string Name { get; }

    public long LengthBytes { get; }

    /// <summary>Opens <paramref name="path"/> with read-only access and shared read/write so a live device can be inspected.</summary>
    public static FileBlockSource Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.RandomAccess);
        var length = RandomAccess.GetLength(handle);
        if (length == 0 && OperatingSystem.IsLinux())
        {
            // Block devices report length 0 through fstat; lseek(SEEK_END) gives their size.
            length = Lseek(handle, 0, 2);
            if (length < 0)
            {
                length = 0;
            }
        }

        return new FileBlockSource(Path.GetFullPath(path), handle, length);
    }

    public int ReadAt(long offsetBytes, Span<byte> buffer)
    {
        if (offsetBytes >= LengthBytes || buffer.IsEmpty)
        {
            return 0;
        }

        try
        {
            return RandomAccess.Read(_handle, buffer, offsetBytes);
        }
        catch (IOException e)
        {
            return ReadDirect(offsetBytes, buffer) ?? throw new SourceReadException(Name, offsetBytes, buffer.Length, e.Message, e);
        }
    }

    public void Dispose()
    {
        _handle.Dispose();
        if (_direct.IsValueCreated)
        {
            _direct.Value?.Dispose();
        }
    }

    /// <summary>The same read through the O_DIRECT descriptor (sector-aligned, into an aligned bounce buffer), or null
    /// when it fails too or direct I/O is not available.</summary>
    private int? ReadDirect(long offsetBytes, Span<byte> buffer)
    {
        var want = (int)Math.Min(buffer.Length, LengthBytes - offsetBytes);
        if (want > MaxDirectRetryBytes || _direct.Value is not { } direct)
        {
            return null;
        }

        var start = offsetBytes - (offsetBytes % DirectSectorBytes);
        var end = checked(offsetBytes + want + DirectSectorBytes - 1) / DirectSectorBytes * DirectSectorBytes;
        var array = GC.AllocateUninitializedArray<byte>((int)(end - start) + DirectMemoryAlignmentBytes, pinned: true);
        var address = (long)Marshal.UnsafeAddrOfPinnedArrayElement(array, 0);
        var skip = (int)((DirectMemoryAlignmentBytes - (address % DirectMemoryAlignmentBytes)) % DirectMemoryAlignmentBytes);
        var bounce = array.AsSpan(skip, (int)(end - start));
        var done = 0;
        try
        {
            while (done < bounce.Length)
            {
                var n = RandomAccess.Read(direct, bounce[done..], start + done);
                if (n <= 0)
                {
                    break;
                }

                done += n;
            }
        }
        catch (IOException)
        {
            return null;
        }

        var head = (int)(offsetBytes - start);
        var got = Math.Min(want, done - head);
        if (got < want)
        {
            return null;
        }

        bounce.Slice(head, got).CopyTo(buffer);
        return got;
    }


    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long Lseek(SafeFileHandle fd, long offset, int whence);
}
