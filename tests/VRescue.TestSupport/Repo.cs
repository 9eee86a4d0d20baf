// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Security.Cryptography;

namespace VRescue.TestSupport;

/// <summary>Paths inside the repository and small helpers shared by all test projects.</summary>
public static class Repo
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "VRescue.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("VRescue.slnx not found above " + AppContext.BaseDirectory);
    });

    public static string Root => s_root.Value;

    /// <summary>tests/fixtures in the checkout.</summary>
    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    /// <summary>Where generated fixture images live (built by tests/fixtures/generate.sh, called from test.sh).</summary>
    public static string FixtureCache =>
        Environment.GetEnvironmentVariable("VRESCUE_FIXTURE_CACHE") is { Length: > 0 } c ? c : Path.Combine(Fixtures, "cache");

    /// <summary>True when running under CI, where nothing may be skipped.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static string Sha256File(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>Runs a real tool and returns stdout; throws with stderr when it fails.</summary>
    public static string Run(string file, string arguments, IDictionary<string, string>? env = null, bool check = true)
    {
        var psi = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        using var p = Process.Start(psi)!;
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var stderr = stderrTask.Result;
        if (check && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {arguments} exited {p.ExitCode}: {stderr}");
        }

        return stdout;
    }

    /// <summary>What a tool run by <see cref="Exec"/> printed and returned.</summary>
    public sealed record ToolResult(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs a tool (found with <see cref="Which"/>) with an argument list: no shell, so names with spaces and newlines pass intact.</summary>
    public static ToolResult Exec(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(Which(file) ?? file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return new ToolResult(p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Finds an executable on PATH (or /sbin, /usr/sbin, where lvm tools live).</summary>
    public static string? Which(string tool)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "") + ":/usr/sbin:/sbin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
