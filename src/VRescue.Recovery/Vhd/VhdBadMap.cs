// SPDX-License-Identifier: MIT
using System.Text;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// The bad-block map as a GNU ddrescue mapfile (ddrescue manual, "Mapfile structure"): every guest byte is listed,
/// '+' recovered, '-' lost, so ddrescuelog and people read it alike. Why each range is lost goes in comment lines.
/// </summary>
public static class VhdBadMap
{
    /// <param name="sizeBytes">Guest size.</param>
    /// <param name="bad">Lost guest ranges, sorted and disjoint.</param>
    /// <param name="commandLine">The command that wrote the map.</param>
    /// <param name="notes">Further comment lines (missing parent, orphan blocks): what is not in the map's ranges but must not be lost silently.</param>
    public static string Format(long sizeBytes, IReadOnlyList<VhdBadRange> bad, string commandLine, IReadOnlyList<string>? notes = null)
    {
        var sb = new StringBuilder();
        sb.Append("# Mapfile. Created by vrescue vhd repair (GNU ddrescue mapfile format)\n");
        sb.Append("# Command line: ").Append(commandLine).Append('\n');
        sb.Append("# Guest byte ranges: '+' recovered, '-' lost (reads as zeros in the output)\n");
        foreach (var n in notes ?? [])
        {
            sb.Append("# ").Append(n.ReplaceLineEndings(" ")).Append('\n');
        }

        foreach (var r in bad)
        {
            sb.Append($"# lost 0x{r.OffsetBytes:X8} +0x{r.LengthBytes:X8}: {r.Reason}\n");
        }

        sb.Append("# current_pos  current_status  current_pass\n");
        sb.Append("0x00000000     +               1\n");
        sb.Append("#      pos        size  status\n");
        long pos = 0;
        foreach (var r in bad)
        {
            if (r.OffsetBytes > pos)
            {
                sb.Append($"0x{pos:X8}  0x{r.OffsetBytes - pos:X8}  +\n");
            }

            sb.Append($"0x{r.OffsetBytes:X8}  0x{r.LengthBytes:X8}  -\n");
            pos = r.EndBytes;
        }

        if (pos < sizeBytes)
        {
            sb.Append($"0x{pos:X8}  0x{sizeBytes - pos:X8}  +\n");
        }

        return sb.ToString();
    }
}
