// SPDX-License-Identifier: MIT
using System.CommandLine;

namespace VRescue.Cli.Commands.Guard;

/// <summary>`vrescue guard ...`: the guest read-only watchdog (docs/guard.md).</summary>
public sealed class GuardCommand : Command
{
    public GuardCommand()
        : base("guard", "Watch this Linux guest for filesystems that went read-only or shut down after storage errors")
    {
        Subcommands.Add(new GuardCheckCommand());
        Subcommands.Add(new GuardAdviseCommand());
        Subcommands.Add(new GuardRunCommand());
        Subcommands.Add(new GuardInstallCommand());
    }
}
