// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Storage;

namespace VRescue.Cli.Commands.Lvm;

/// <summary>`vrescue lvm …`: LVM metadata history, export and repair.</summary>
public sealed class LvmCommand : Command
{
    public LvmCommand()
        : base("lvm", "LVM metadata history of a PV's rings and backups; export or restore an older version")
    {
        Subcommands.Add(new LvmHistoryCommand());
        Subcommands.Add(new LvmExportCommand());
        Subcommands.Add(new LvmRepairCommand());
    }

    internal static Argument<string[]> Sources(ArgumentArity arity) => new("SOURCE")
    {
        Description = "Image file(s) or block device(s) holding the PV(s), opened read-only",
        Arity = arity,
    };

    internal static Option<string[]> BackupOption() => new("--backup")
    {
        Description = "LVM backup/archive file or folder (/etc/lvm/backup, /etc/lvm/archive, /etc/lvm/master/backup); repeatable",
        Arity = ArgumentArity.ZeroOrMore,
    };

    internal static Option<string> VgOption() => new("--vg") { Description = "VG name or uuid", Required = true };

    internal static Option<long> SeqnoOption() => new("--seqno") { Description = "Metadata sequence number of the version", Required = true };

    internal static Option<string?> CrcOption() => new("--crc") { Description = "CRC of the version (hex), when two versions share a seqno" };

    /// <summary>Opens every path read-only; disposes what was opened when one fails.</summary>
    internal static List<FileBlockSource> Open(IEnumerable<string> paths)
    {
        var sources = new List<FileBlockSource>();
        try
        {
            foreach (var p in paths)
            {
                sources.Add(FileBlockSource.Open(p));
            }

            return sources;
        }
        catch
        {
            sources.ForEach(s => s.Dispose());
            throw;
        }
    }
}
