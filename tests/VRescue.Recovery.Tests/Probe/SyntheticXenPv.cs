// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Formats.Lvm;

namespace VRescue.Recovery.Tests.Probe;

/// <summary>
/// A 32 MiB single-PV SR written in memory for hostile metadata tests: label, one mda (committed text at ring offset
/// 512), pe_start 1 MiB, 4 MiB extents (8 start on the source, pe_count 7). The LV text is the caller's.
/// </summary>
internal static class SyntheticXenPv
{
    public const int MiB = 1024 * 1024;
    public const long PeStartBytes = MiB;
    public const long ExtentBytes = 4 * MiB;
    public const string Vg = "VG_XenStorage-0e1d2c3b-4a59-4867-9f8e-7d6c5b4a3928";
    private const int Mda = 4096;
    private const string PvId = "ppJvqW-KZey-ljd1-y8gZ-S6qi-e71q-qMd8mp";

    /// <summary>The PV bytes with <paramref name="lvs"/> inside logical_volumes; <paramref name="peStart"/> as written in the text.</summary>
    public static byte[] Pv(string lvs, string peStart = "2048")
    {
        var text = Encoding.ASCII.GetBytes(
            $"{Vg} {{\nid = \"prQQDG-bJQ6-0B8s-1aSc-83e1-ZBmO-9ObQVc\"\nseqno = 3\nformat = \"lvm2\"\nstatus = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\n" +
            "flags = []\nextent_size = 8192\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n\nphysical_volumes {\n\npv0 {\n" +
            $"id = \"{PvId}\"\ndevice = \"/dev/loop0\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\ndev_size = 65536\npe_start = {peStart}\npe_count = 7\n}}\n}}\n" +
            $"\nlogical_volumes {{\n{lvs}}}\n}}\ncontents = \"Text Format Volume Group\"\nversion = 1\n\0");
        var disk = new byte[32 * MiB];
        text.CopyTo(disk, Mda + 512);
        LvmMdaHeader.Create(Mda, MiB - Mda, new LvmRawLocation(512, (ulong)text.Length, LvmCrc.Compute(text), 0)).Raw.CopyTo(disk.AsSpan(Mda));
        LvmLabel.Create(1, LvmUuid.Strip(PvId), (ulong)disk.Length, [new LvmDiskLocation(MiB, 0)], [new LvmDiskLocation(Mda, MiB - Mda)])
            .Raw.CopyTo(disk.AsSpan(512));
        return disk;
    }

    /// <summary>A linear LV: one segment of <paramref name="count"/> extents at PV extent <paramref name="pe"/>.</summary>
    public static string Lv(string name, long pe, long count, long stripeCount = 1) =>
        $"{name} {{\nid = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-{Math.Abs(pe % 1000000):D6}\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 1\n\n" +
        $"segment1 {{\nstart_extent = 0\nextent_count = {count}\n\ntype = \"striped\"\nstripe_count = {stripeCount}\n\nstripes = [\n\"pv0\", {pe}\n]\n}}\n}}\n";

    /// <summary>The number of extents that start on the 32 MiB source (the last one partial).</summary>
    public static long ExtentsOnSource => ((32L * MiB) - PeStartBytes + ExtentBytes - 1) / ExtentBytes;
}
