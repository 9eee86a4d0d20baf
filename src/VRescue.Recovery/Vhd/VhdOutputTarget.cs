// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;

namespace VRescue.Recovery.Vhd;

/// <summary>The --out of a repair was refused (it is the evidence, or not a regular file).</summary>
public sealed class OutputRefusedException(string message) : IOException(message);

/// <summary>
/// Evidence is sacred: the output must not be the input under any name (same path, symlink, hard link), and it is
/// written to a temporary file beside it and renamed into place, so even a refused check could never write into the
/// input's inode.
/// </summary>
public static class VhdOutputTarget
{
    /// <summary>Throws <see cref="OutputRefusedException"/> when <paramref name="outPath"/> is the input or an existing non-regular file.</summary>
    public static void EnsureNotEvidence(string inputPath, string outPath)
    {
        var input = Resolve(inputPath);
        var output = Resolve(outPath);
        if (string.Equals(input, output, StringComparison.Ordinal))
        {
            throw new OutputRefusedException($"refusing --out {outPath}: it is the input {inputPath} (evidence is never written)");
        }

        if (File.Exists(outPath) || Directory.Exists(outPath))
        {
            var attributes = File.GetAttributes(output);
            if ((attributes & FileAttributes.Directory) != 0 || !IsRegularFile(output))
            {
                throw new OutputRefusedException($"refusing --out {outPath}: not a regular file");
            }

            if (FileId(input) is { } a && FileId(output) is { } b && a == b)
            {
                throw new OutputRefusedException($"refusing --out {outPath}: it is a hard link to the input {inputPath} (evidence is never written)");
            }
        }
    }

    /// <summary>Creates a temporary file next to <paramref name="outPath"/>, lets <paramref name="write"/> fill it, then renames it over <paramref name="outPath"/>.</summary>
    public static T WriteAtomically<T>(string outPath, Func<Microsoft.Win32.SafeHandles.SafeFileHandle, T> write)
    {
        var full = Path.GetFullPath(outPath);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.vrescue-{Environment.ProcessId}.tmp");
        try
        {
            T result;
            using (var handle = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None))
            {
                result = write(handle);
                RandomAccess.FlushToDisk(handle);
            }

            File.Move(tmp, full, overwrite: true);
            return result;
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }

    private static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        try
        {
            return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            return full;
        }
    }

    private static bool IsRegularFile(string path) =>
        !OperatingSystem.IsLinux() || (FileId(path) is { Mode: var mode } && (mode & 0xF000) == 0x8000);

    private readonly record struct Identity(ulong Device, ulong Inode, uint Mode);

    private static Identity? FileId(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        // struct stat on x86_64 and aarch64 glibc: st_dev u64 @0, st_ino u64 @8; st_mode u32 @24 (x86_64) / @16 (aarch64).
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0)
        {
            return null;
        }

        var modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        return new Identity(BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8), BitConverter.ToUInt32(buffer, modeOffset));
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int Stat(string path, byte[] buffer);
}
