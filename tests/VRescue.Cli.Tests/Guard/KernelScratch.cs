// SPDX-License-Identifier: MIT
using System.Diagnostics;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Guard;

/// <summary>
/// A unique temporary directory with the loop devices, mounts and processes a real-kernel test made; Dispose undoes
/// them in reverse order even when the test failed (umount -l, losetup -d, fusermount3 -u, kill by pid).
/// </summary>
internal sealed class KernelScratch : IDisposable
{
    private readonly List<Action> _undo = [];

    public KernelScratch() => Dir = Directory.CreateTempSubdirectory("vrescue-guard-real-").FullName;

    public string Dir { get; }

    public string PathOf(string name) => Path.Combine(Dir, name);

    /// <summary>Runs a tool with an argument list (no shell, so names with spaces and newlines pass intact).</summary>
    public static string Run(string file, params string[] args)
    {
        var r = Repo.Exec(file, args);
        return r.ExitCode == 0 ? r.Stdout : throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}");
    }

    /// <summary>A sparse image file of <paramref name="sizeMiB"/>.</summary>
    public string Image(string name, int sizeMiB)
    {
        var path = PathOf(name);
        using (var f = File.Create(path))
        {
            f.SetLength(sizeMiB * 1024L * 1024);
        }

        return path;
    }

    /// <summary>Attaches a loop device; detached on dispose.</summary>
    public string Loop(string backing)
    {
        var dev = Run("losetup", "-f", "--show", backing).Trim();
        _undo.Add(() => Run("losetup", "-d", dev));
        return dev;
    }

    /// <summary>Mounts with extra mount(8) arguments; lazily unmounted on dispose.</summary>
    public string Mount(string target, params string[] mountArgs)
    {
        Directory.CreateDirectory(target);
        Run("mount", [.. mountArgs, target]);
        _undo.Add(() => Run("umount", "-l", target));
        return target;
    }

    /// <summary>Starts a long-running process (nbdfuse); killed by its pid on dispose.</summary>
    public Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        _undo.Add(() =>
        {
            if (!p.WaitForExit(5000))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }

            p.Dispose();
        });
        return p;
    }

    /// <summary>Registers an extra cleanup step (runs before the ones registered earlier).</summary>
    public void OnDispose(Action undo) => _undo.Add(undo);

    public void Dispose()
    {
        for (var i = _undo.Count - 1; i >= 0; i--)
        {
            try
            {
                _undo[i]();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
            {
                Console.Error.WriteLine("cleanup: " + e.Message);
            }
        }

        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine("cleanup: " + e.Message);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until true or the deadline passes.</summary>
    public static bool WaitFor(Func<bool> condition, TimeSpan deadline)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < deadline)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(100);
        }

        return condition();
    }
}
