// SPDX-License-Identifier: MIT
using VRescue.Storage;

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
        try
        {
            TargetGuard.EnsureNotSource(outPath, [inputPath]);
        }
        catch (TargetIsSourceException e)
        {
            throw new OutputRefusedException($"refusing --out {outPath}: {e.Message}");
        }

        if (!TargetGuard.IsRegularFileOrMissing(outPath))
        {
            throw new OutputRefusedException($"refusing --out {outPath}: not a regular file");
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
}
