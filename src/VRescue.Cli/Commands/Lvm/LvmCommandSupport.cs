// SPDX-License-Identifier: MIT
using VRescue.Recovery.Lvm;

namespace VRescue.Cli.Commands.Lvm;

internal static class LvmCommandSupport
{
    /// <summary>Picks the version or prints why not (exit code in <paramref name="failure"/>).</summary>
    public static (LvmVgHistory? Vg, LvmVgVersion? Version) Select(LvmHistory history, string vg, long seqno, string? crc, TextWriter stderr, out int failure)
    {
        failure = ExitCodes.Ok;
        try
        {
            var (h, v) = history.Select(vg, seqno, crc);
            return (h, v);
        }
        catch (LvmVersionSelectionException e)
        {
            stderr.WriteLine("vrescue: " + e.Message);
            failure = history.Vgs.Count == 0 ? ExitCodes.NotRecognised : ExitCodes.Usage;
            return (null, null);
        }
    }
}
