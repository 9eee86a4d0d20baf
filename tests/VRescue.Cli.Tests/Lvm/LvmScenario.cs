// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Text.RegularExpressions;
using VRescue.Formats.Xen;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Lvm;

/// <summary>Scenario building blocks for the lvm history/export/repair tests: real lvm2 on loop devices, damage by recipe.</summary>
internal static partial class LvmScenario
{
    public const long MiB = 1024 * 1024;

    public static string XenVgName() => XenNames.VgPrefix + Guid.NewGuid();

    /// <summary>Runs many lvm commands in one process (an lvm shell script), much faster than one process each.</summary>
    public static void Batch(LoopLvm loop, IEnumerable<string> commands)
    {
        var script = Path.Combine(loop.Directory, $"batch-{Guid.NewGuid():N}.lvm");
        File.WriteAllLines(script, commands.Prepend("#!/sbin/lvm"));
        loop.Lvm(script);
    }

    /// <summary>(offset, crc, seqno, vg id) of every copy `pvck --dump metadata_search` finds.</summary>
    public static List<(long Offset, string Crc, long Seqno, string VgId)> PvckSearch(LoopLvm loop, string settings = "")
    {
        var output = loop.Lvm($"pvck --dump metadata_search {settings} {loop.Device}", check: false);
        return PvckLine().Matches(output)
            .Select(m => (long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value.PadLeft(8, '0'),
                long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), m.Groups[4].Value))
            .Distinct().OrderBy(x => x.Item1).ToList();
    }

    [GeneratedRegex(@"metadata at (\d+) length \d+ crc ([0-9a-f]+) vg \S+ seqno (\d+) id (\S+)")]
    private static partial Regex PvckLine();

    /// <summary>Every segment as lvs prints it: "lv start+count dev-relative-ranges", sorted.</summary>
    public static List<string> Segments(LoopLvm loop) =>
        loop.Report("lvs --segments", "seg", "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges")
            .Select(j => $"{j.GetProperty("lv_name").GetString()} {j.GetProperty("seg_start_pe").GetString()}+{j.GetProperty("seg_size_pe").GetString()} " +
                         j.GetProperty("seg_pe_ranges").GetString()!.Replace(loop.Device, "dev", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();

    /// <summary>Overwrites <paramref name="length"/> bytes at <paramref name="offset"/> of an image with zeros.</summary>
    public static void Zero(string image, long offset, long length)
    {
        using var f = new FileStream(image, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        var zeros = new byte[Math.Min(length, MiB)];
        for (long done = 0; done < length; done += zeros.Length)
        {
            f.Write(zeros, 0, (int)Math.Min(zeros.Length, length - done));
        }
    }

    /// <summary>Copies an image into a loop device's backing file in place (the loop device keeps the same inode).</summary>
    public static void CopyInto(string image, LoopLvm loop)
    {
        using (var src = File.OpenRead(image))
        using (var dst = new FileStream(loop.ImagePath, FileMode.Open, FileAccess.Write))
        {
            var buffer = new byte[MiB];
            int n;
            long at = 0;
            while ((n = src.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
                {
                    dst.Position = at;
                    dst.Write(buffer, 0, n);
                }

                at += n;
            }
        }

        Repo.Run("blockdev", $"--flushbufs {loop.Device}", check: false);
    }

    /// <summary>Writes an MGT volume (as SM's srmetadata.py lays it out) into the extent of LV MGT.</summary>
    public static void WriteMgt(LoopLvm loop, string vg, IReadOnlyList<(Guid Uuid, string Name)> vdis)
    {
        var seg = loop.Report("lvs --segments", "seg", "lv_name,seg_pe_ranges").Single(j => j.GetProperty("lv_name").GetString() == "MGT");
        var pe = long.Parse(seg.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-')[0], CultureInfo.InvariantCulture);
        var pv = Assert.Single(loop.Report("pvs", "pv", "pe_start"));
        var extent = long.Parse(Assert.Single(loop.Report("vgs", "vg", "vg_extent_size")).GetProperty("vg_extent_size").GetString()!, CultureInfo.InvariantCulture);
        var offset = long.Parse(pv.GetProperty("pe_start").GetString()!, CultureInfo.InvariantCulture) + (pe * extent);
        var bytes = XenMgtVolume.Encode(
            new XenMgtSrInfo { UuidText = vg[XenNames.VgPrefix.Length..], Allocation = "thick", NameLabel = "history SR", NameDescription = "" },
            vdis.Select(v => new XenMgtVdiRecord
            {
                NameLabel = v.Name, NameDescription = "", UuidText = v.Uuid.ToString(), IsASnapshotText = "0", SnapshotOfText = "",
                SnapshotTime = "", Type = "user", VdiType = "vhd", ReadOnlyText = "0", ManagedText = "1", MetadataOfPool = "", DeletedText = "0",
            }).ToList());
        using var f = new FileStream(loop.ImagePath, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }
}
