// SPDX-License-Identifier: MIT
namespace VRescue.Guard.Install;

/// <summary>Where <see cref="GuardInstaller"/> puts things; explicit so tests install into a temporary root.</summary>
public sealed record GuardInstallOptions
{
    /// <summary>The binary to install (the running single-file vrescue).</summary>
    public required string Binary { get; init; }

    /// <summary>Binary goes to PREFIX/bin/vrescue.</summary>
    public string Prefix { get; init; } = "/usr/local";

    public string ConfigDir { get; init; } = "/etc/vrescue";
    public string SystemdDir { get; init; } = "/etc/systemd/system";

    /// <summary>Replace an existing configuration file (otherwise it is kept).</summary>
    public bool Force { get; init; }
}

/// <summary>One thing the installer did or left alone.</summary>
public sealed record GuardInstallStep(string Path, string Action);

/// <summary>
/// Puts the single-file binary, the example configuration and the systemd units in place. Units and the example come
/// from packaging/guard, embedded in the assembly; the unit paths are rewritten to the chosen prefix and config dir.
/// Never overwrites an existing configuration without <see cref="GuardInstallOptions.Force"/>; never runs systemctl.
/// </summary>
public static class GuardInstaller
{
    public const string ConfigFileName = "guard.yaml";
    public static readonly string[] UnitNames = ["vrescue-guard.service", "vrescue-guard-once.service", "vrescue-guard-once.timer"];

    // The paths written in the packaging files, replaced on install.
    private const string DefaultBinary = "/usr/local/bin/vrescue";
    private const string DefaultConfig = "/etc/vrescue/guard.yaml";

    /// <summary>The text of an installable file (a unit name, or "guard.example.yaml").</summary>
    public static string Resource(string name)
    {
        using var s = typeof(GuardInstaller).Assembly.GetManifestResourceStream("VRescue.Guard.Install." + name)
            ?? throw new InvalidOperationException($"resource {name} missing from {typeof(GuardInstaller).Assembly.GetName().Name}");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    public static IReadOnlyList<GuardInstallStep> Install(GuardInstallOptions o)
    {
        var steps = new List<GuardInstallStep>();
        var prefix = Path.GetFullPath(o.Prefix);
        var configDir = Path.GetFullPath(o.ConfigDir);
        var binary = Path.Combine(prefix, "bin", "vrescue");
        var config = Path.Combine(configDir, ConfigFileName);

        if (!File.Exists(o.Binary))
        {
            throw new FileNotFoundException($"binary to install not found: {o.Binary}");
        }

        if (Path.GetFullPath(o.Binary) == binary)
        {
            steps.Add(new(binary, "already in place"));
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(binary)!);
            var tmp = binary + ".new";
            File.Copy(o.Binary, tmp, overwrite: true);
            SetMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.Move(tmp, binary, overwrite: true);
            steps.Add(new(binary, "installed"));
        }

        Directory.CreateDirectory(configDir);
        if (File.Exists(config) && !o.Force)
        {
            steps.Add(new(config, "kept (exists; --force replaces it)"));
        }
        else
        {
            var existed = File.Exists(config);
            // 0600: the file may hold an SMTP password.
            Write(config, Resource("guard.example.yaml"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
            steps.Add(new(config, existed ? "replaced (--force)" : "installed (edit the channels)"));
        }

        Directory.CreateDirectory(o.SystemdDir);
        foreach (var unit in UnitNames)
        {
            var path = Path.Combine(Path.GetFullPath(o.SystemdDir), unit);
            var text = Resource(unit).Replace(DefaultBinary, binary, StringComparison.Ordinal).Replace(DefaultConfig, config, StringComparison.Ordinal);
            Write(path, text, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            steps.Add(new(path, "installed"));
        }

        return steps;
    }

    /// <summary>
    /// The running executable when it is a single-file vrescue: not the dotnet host, and not an apphost with the
    /// assemblies beside it (copying that alone would install a binary that cannot start).
    /// </summary>
    public static string? RunningBinary()
    {
        var path = Environment.ProcessPath;
        var beside = Path.Combine(AppContext.BaseDirectory, typeof(GuardInstaller).Assembly.GetName().Name + ".dll");
        return path is not null && Path.GetFileName(path) != "dotnet" && !File.Exists(beside) ? path : null;
    }

    private static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    private static void Write(string path, string text, UnixFileMode mode)
    {
        var tmp = path + ".new";
        File.WriteAllText(tmp, text);
        SetMode(tmp, mode);
        File.Move(tmp, path, overwrite: true);
    }
}
