// SPDX-License-Identifier: MIT
using System.CommandLine;

namespace VRescue.Cli.Commands.Vhd;

/// <summary>`vrescue vhd`: check and repair damaged VDIs.</summary>
public sealed class VhdCommand : Command
{
    internal static readonly Argument<string[]> TargetArgument = new("TARGET")
    {
        Description = "A VHD file, or with --vdi UUID the SR's disk images (one or more SOURCEs); opened read-only",
        Arity = ArgumentArity.OneOrMore,
    };

    internal static readonly Option<string?> VdiOption = new("--vdi")
    {
        Description = "The VDI with this uuid inside the SR assembled from TARGET (its parents are found in the same SR)",
    };

    public VhdCommand()
        : base("vhd", "Check and repair VHD VDIs, and judge the guest filesystem inside")
    {
        Subcommands.Add(new VhdCheckCommand());
        Subcommands.Add(new VhdRepairCommand());
    }
}
