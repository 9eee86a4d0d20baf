// SPDX-License-Identifier: MIT
using System.Text.RegularExpressions;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>
/// What the peer tools make of one VHD, in the words of docs/vhd-agreement.md: libvhdi (vhdiinfo, vhdimount) and
/// qemu's vpc driver (qemu-img info, qemu-img convert), content judged by sha256 against the known original.
/// </summary>
internal static partial class VhdPeers
{
    public static Repo.ToolResult Run(string file, params string[] args) => Repo.Exec(file, args);

    /// <summary>"opens" or "error: " + libvhdi's innermost reason (its first "unable to ..." line).</summary>
    public static string Vhdiinfo(string vhd)
    {
        var r = Run("vhdiinfo", vhd);
        return r.ExitCode == 0 ? "opens" : "error: " + LibvhdiReason(r.Stdout + r.Stderr);
    }

    /// <summary>Content as vhdimount (libvhdi, FUSE) serves it: the last vhdiN file is the image given, parents before it.</summary>
    public static string Vhdimount(string vhd, string expectedSha256)
    {
        var mnt = Directory.CreateTempSubdirectory("vrescue-vhdimount-").FullName;
        try
        {
            var r = Run("vhdimount", vhd, mnt);
            if (r.ExitCode != 0)
            {
                return "error: " + LibvhdiReason(r.Stdout + r.Stderr);
            }

            try
            {
                var served = Directory.GetFiles(mnt, "vhdi*").OrderBy(n => int.Parse(Path.GetFileName(n)[4..])).Last();
                return Content(Repo.Sha256File(served), expectedSha256);
            }
            finally
            {
                Unmount(mnt);
            }
        }
        finally
        {
            Directory.Delete(mnt);
        }
    }

    /// <summary>
    /// fusermount -u right after the last read can find the mount still busy (the FUSE daemon has not let go of the file
    /// yet: "Device or resource busy"); retried for up to 5 s, then detached lazily so the directory can go.
    /// </summary>
    private static void Unmount(string mnt)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (Run("fusermount", "-u", mnt).ExitCode == 0)
            {
                return;
            }

            Thread.Sleep(100);
        }

        Run("fusermount", "-u", "-z", mnt);
    }

    /// <summary>"opens" or "error: " + qemu's message after the file name.</summary>
    public static string QemuInfo(string vhd)
    {
        var r = Run("qemu-img", "info", "-f", "vpc", vhd);
        return r.ExitCode == 0 ? "opens" : "error: " + QemuReason(r.Stderr);
    }

    /// <summary>qemu-img convert -f vpc -O raw, judged by sha256.</summary>
    public static string QemuConvert(string vhd, string expectedSha256)
    {
        var raw = vhd + ".qemu.raw";
        var r = Run("qemu-img", "convert", "-f", "vpc", "-O", "raw", vhd, raw);
        try
        {
            return r.ExitCode == 0 ? Content(Repo.Sha256File(raw), expectedSha256) : "error: " + QemuReason(r.Stderr);
        }
        finally
        {
            File.Delete(raw);
        }
    }

    public static string Content(string sha256, string expectedSha256) => sha256 == expectedSha256 ? "right content" : "wrong content";

    private static string LibvhdiReason(string output) =>
        UnableLine().Match(output) is { Success: true } m ? m.Groups[1].Value.TrimEnd('.') : output.Trim().Split('\n')[^1];

    private static string QemuReason(string stderr) =>
        QemuLine().Match(stderr) is { Success: true } m ? m.Groups[1].Value.Trim() : stderr.Trim();

    [GeneratedRegex(@"^\w+: (unable to [^\n]*)$", RegexOptions.Multiline)]
    private static partial Regex UnableLine();

    [GeneratedRegex(@"Could not open '[^']*': ([^\n]*)")]
    private static partial Regex QemuLine();
}
