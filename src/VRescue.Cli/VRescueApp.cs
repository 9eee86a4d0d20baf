// SPDX-License-Identifier: MIT
using System.CommandLine;
using VRescue.Cli.Commands;
using VRescue.Formats.Common;
using VRescue.Storage;

namespace VRescue.Cli;

/// <summary>The command tree (an explicit list, no reflection) and the top-level error policy.</summary>
public static class VRescueApp
{
    /// <summary>Machine-readable output for every command.</summary>
    public static readonly Option<bool> JsonOption = new("--json") { Description = "Print one JSON document instead of human output", Recursive = true };

    // The options are static fields shared by every command object, and adding one to a command mutates it (its
    // parent list), so the tree is built once; parsing is serialised, because the parser's lazy state on those shared
    // symbols is not thread-safe (parallel runs in one process, as the tests do, failed with a NullReferenceException
    // inside ArgumentResult.ValidateAndConvert). Invocation runs in parallel.
    private static readonly Lazy<RootCommand> s_root = new(BuildRoot);
    private static readonly Lock s_parseLock = new();

    private static RootCommand BuildRoot()
    {
        var root = new RootCommand("VRescue: recover XenServer/XCP-ng LVM storage repositories, and watch guests for read-only filesystems.")
        {
            JsonOption,
        };
        root.Subcommands.Add(new ProbeCommand());
        root.Subcommands.Add(new ExportCommand());
        root.Subcommands.Add(new RecoverCommand());
        root.Subcommands.Add(new Commands.Lvm.LvmCommand());
        root.Subcommands.Add(new Commands.Guard.GuardCommand());
        root.Subcommands.Add(new Commands.Partitions.PartitionsCommand());
        root.Subcommands.Add(new Commands.Vhd.VhdCommand());
        root.Subcommands.Add(new CarveCommand());
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; never lets an exception escape as a stack trace.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancel = default)
    {
        ParseResult parse;
        lock (s_parseLock)
        {
            parse = s_root.Value.Parse(args);
        }

        var config = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await stderr.WriteLineAsync("vrescue: " + e.Message);
            }

            await stderr.WriteLineAsync("Run 'vrescue --help' for usage.");
            return ExitCodes.Usage;
        }

        try
        {
            return await parse.InvokeAsync(config, cancel);
        }
        catch (Exception e) when (Describe(e) is { } described)
        {
            await stderr.WriteLineAsync("vrescue: " + described.Message);
            if (Environment.GetEnvironmentVariable("VRESCUE_DEBUG") == "1")
            {
                await stderr.WriteLineAsync(e.ToString());
            }

            return described.ExitCode;
        }
    }

    private static (string Message, int ExitCode)? Describe(Exception e) => e switch
    {
        OperationCanceledException => ("cancelled", ExitCodes.Internal),
        CorruptDataException c => ($"{c.Message} ({c.Format} {c.Structure}, code {c.Code})", ExitCodes.Damaged),
        UnsupportedFormatFeatureException u => (u.Message, ExitCodes.NotRecognised),
        SourceReadException s => (s.Message, ExitCodes.IoError),
        FileNotFoundException or DirectoryNotFoundException => (e.Message, ExitCodes.IoError),
        UnauthorizedAccessException => (e.Message + " (run as root to read block devices)", ExitCodes.IoError),
        IOException => (e.Message, ExitCodes.IoError),
        _ => ($"internal error: {e.GetType().Name}: {e.Message} (this is a VRescue bug; VRESCUE_DEBUG=1 shows the trace)", ExitCodes.Internal),
    };
}
