// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage;

/// <summary>An image file or block device opened read-only (evidence is never opened for writing).</summary>
public sealed class FileBlockSource : IBlockSource, IDisposable
{
    private readonly SafeFileHandle _handle;

    private FileBlockSource(string path, SafeFileHandle handle, long lengthBytes)
    {
        Name = path;
        _handle = handle;
        LengthBytes = lengthBytes;
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
            throw new SourceReadException(Name, offsetBytes, buffer.Length, e.Message, e);
        }
    }

    public void Dispose() => _handle.Dispose();

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long Lseek(SafeFileHandle fd, long offset, int whence);
}
