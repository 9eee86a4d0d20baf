// SPDX-License-Identifier: MIT
using System.CommandLine;

namespace VRescue.Cli.Commands.Partitions;

/// <summary>`vrescue partitions scan|repair`: find the SR when the partition table is gone, and rebuild the table.</summary>
public sealed class PartitionsCommand : Command
{
    public PartitionsCommand()
        : base("partitions", "Check the partition table, find partitions by their signatures, and rebuild a lost table into a copy")
    {
        Subcommands.Add(new PartitionsScanCommand());
        Subcommands.Add(new PartitionsRepairCommand());
    }
}
