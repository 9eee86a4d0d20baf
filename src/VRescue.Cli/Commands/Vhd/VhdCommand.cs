// SPDX-License-Identifier: MIT
using System.CommandLine;

namespace VRescue.Cli.Commands.Vhd;

/// <summary>`vrescue vhd`: check and repair damaged VDIs.</summary>
public sealed class VhdCommand : Command
{
    internal static readonly Argument<string> TargetArgument = new("TARGET")
    {
        Description = "A VHD file, or an SR image with --vdi UUID; opened read-only",
    };

    internal static readonly Option<string?> VdiOption = new("--vdi")
    {
        Description = "Check the VDI with this uuid inside the SR on TARGET",
    };

    public VhdCommand()
        : base("vhd", "Check and repair VHD VDIs, and judge the guest filesystem inside")
    {
        Subcommands.Add(new VhdCheckCommand());
        Subcommands.Add(new VhdRepairCommand());
    }
}
