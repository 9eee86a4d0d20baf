// SPDX-License-Identifier: MIT
using VRescue.Recovery.Export;

namespace VRescue.Cli.Rendering;

/// <summary>Human output of `vrescue export`: one block per VDI, then where the manifest is.</summary>
public static class ExportRenderer
{
    public static void Write(TextWriter o, ExportManifest m)
    {
        foreach (var v in m.Vdis)
        {
            WriteVdi(o, v);
        }

        var ok = m.Vdis.Count(v => v.Status == "exported");
        o.WriteLine($"{ok} of {m.Vdis.Count} VDI(s) exported completely to {m.OutDir} (manifest.json lists them with sha256 and chain)");
    }

    public static void WriteVdi(TextWriter o, ExportedVdi v)
    {
        var name = v.NameLabel is null ? "" : $" \"{v.NameLabel}\"";
        var flags = (v.Deleted ? " [deleted]" : "") + (v.Hidden ? " [hidden]" : "");
        if (v.Status == "failed")
        {
            o.WriteLine($"FAILED   {v.Uuid}{name}{flags}: {v.Error}");
        }
        else
        {
            var state = v.Status == "partial" ? "PARTIAL " : "exported";
            var chain = v.Chain.Count > 1 ? $", chain of {v.Chain.Count} flattened" : "";
            o.WriteLine($"{state} {v.Uuid}{name}{flags} -> {v.File}  {Units.Size(v.VirtualSizeBytes)} ({Units.Size(v.WrittenBytes)} data{chain}){(v.Sha256 is null ? "" : "  sha256 " + v.Sha256)}");
            o.WriteLine($"         from {v.Source.Description}");
            if (v.Partial)
            {
                o.WriteLine($"         {v.UnreadableRanges.Sum(r => r.LengthBytes)} bytes in {v.UnreadableRanges.Count} range(s) unreadable, zeros in the output (first at guest offset {v.UnreadableRanges[0].OffsetBytes})");
            }
        }

        foreach (var w in v.Warnings)
        {
            o.WriteLine($"         warning: {w}");
        }
    }
}
