// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Guard.Install;

namespace VRescue.Cli.Commands.Guard;

/// <summary>
/// `vrescue guard install [--prefix DIR] [--config-dir DIR] [--systemd-dir DIR] [--binary PATH] [--force]`: binary,
/// example configuration (kept if present) and systemd units. Does not run systemctl; prints what to run.
/// </summary>
public sealed class GuardInstallCommand : Command
{
    private static readonly Option<string> s_prefix = new("--prefix") { Description = "Install the binary as PREFIX/bin/vrescue", DefaultValueFactory = _ => "/usr/local" };
    private static readonly Option<string> s_configDir = new("--config-dir") { Description = "Directory for guard.yaml", DefaultValueFactory = _ => "/etc/vrescue" };
    private static readonly Option<string> s_systemdDir = new("--systemd-dir") { Description = "Directory for the systemd units", DefaultValueFactory = _ => "/etc/systemd/system" };
    private static readonly Option<string?> s_binary = new("--binary") { Description = "Binary to install (default: this single-file vrescue)" };
    private static readonly Option<bool> s_force = new("--force") { Description = "Replace an existing guard.yaml" };

    public GuardInstallCommand()
        : base("install", "Install the single-file binary, an example guard.yaml and the systemd service and timer units")
    {
        Options.Add(s_prefix);
        Options.Add(s_configDir);
        Options.Add(s_systemdDir);
        Options.Add(s_binary);
        Options.Add(s_force);
        SetAction(Execute);
    }

    private static int Execute(ParseResult parse)
    {
        var output = parse.InvocationConfiguration.Output;
        var binary = parse.GetValue(s_binary) ?? GuardInstaller.RunningBinary();
        if (binary is null)
        {
            parse.InvocationConfiguration.Error.WriteLine("vrescue: this vrescue runs on the dotnet host, not as a single file; build one with packaging/guard/build.sh or pass --binary PATH");
            return ExitCodes.Usage;
        }

        var steps = GuardInstaller.Install(new GuardInstallOptions
        {
            Binary = binary,
            Prefix = parse.GetValue(s_prefix)!,
            ConfigDir = parse.GetValue(s_configDir)!,
            SystemdDir = parse.GetValue(s_systemdDir)!,
            Force = parse.GetValue(s_force),
        });
        foreach (var s in steps)
        {
            output.WriteLine($"{s.Action,-36} {s.Path}");
        }

        output.WriteLine();
        output.WriteLine($"Next: edit {steps[1].Path} (channels), check it with `vrescue guard run --once --config {steps[1].Path}`, then");
        output.WriteLine("  systemctl daemon-reload && systemctl enable --now vrescue-guard.service");
        output.WriteLine("  (or, without a resident process: systemctl enable --now vrescue-guard-once.timer)");
        return ExitCodes.Ok;
    }
}
