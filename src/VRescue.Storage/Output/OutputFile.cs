// SPDX-License-Identifier: MIT
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage.Output;

/// <summary>
/// A new output file written under a temporary name in the target directory and renamed to its final name only by
/// <see cref="Commit"/>, so an interrupted export never leaves a file that looks complete. Disposing without a commit
/// deletes the temporary file. Writes are positional and may come from several threads.
/// </summary>
public sealed class OutputFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private bool _committed;

    private OutputFile(string finalPath, string tempPath, SafeFileHandle handle)
    {
        FinalPath = finalPath;
        TempPath = tempPath;
        _handle = handle;
    }

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
        return new OutputFile(full, temp, handle);
    }

    public void Write(long offsetBytes, ReadOnlySpan<byte> data) => RandomAccess.Write(_handle, data, offsetBytes);

    public void SetLength(long lengthBytes) => RandomAccess.SetLength(_handle, lengthBytes);

    /// <summary>Flushes, closes and renames the file to <see cref="FinalPath"/> (replacing an earlier export of the same name).</summary>
    public void Commit()
    {
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
}
