// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Partitions;

/// <summary>A temp directory of disk images made by sgdisk/sfdisk, with damage recipes and the tools' own view.</summary>
internal sealed class PartitionImages : IDisposable
{
    public const long DiskBytes = 64L * 1024 * 1024;

    public string Dir { get; } = Directory.CreateTempSubdirectory("vrescue-parts-").FullName;

    /// <summary>sgdisk: partition 1 is 20 MiB Linux LVM at 2048 named "xen-sr", partition 2 fills the rest as 8300.</summary>
    public string Gpt(string name = "gpt.img")
    {
        var path = Blank(name);
        Repo.Run("sgdisk", $"-n 1:2048:+20M -t 1:8e00 -c 1:xen-sr -n 2:0:0 -t 2:8300 \"{path}\"");
        return path;
    }

    /// <summary>sfdisk: a DOS label with two primaries, an extended partition and two logical partitions.</summary>
    public string Mbr(string name = "mbr.img", string wipe = "auto", string? over = null)
    {
        var path = over ?? Blank(name);
        Sfdisk(path, wipe, """
            label: dos
            start=2048, size=20480, type=8e, bootable
            start=22528, size=10240, type=83
            start=40960, type=5
            start=43008, size=4096, type=82
            start=49152, size=2048, type=83
            """);
        return path;
    }

    public string Blank(string name)
    {
        var path = Path.Combine(Dir, name);
        using (var f = File.Create(path))
        {
            f.SetLength(DiskBytes);
        }

        return path;
    }

    public static void Sfdisk(string path, string wipe, string script)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("sfdisk", $"-q --wipe {wipe} \"{path}\"")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.Write(script);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "sfdisk failed: " + err);
    }

    /// <summary>The partitions as `sfdisk --json` reports them: partition number, start and size in sectors, type, uuid, name.</summary>
    public static List<(int Number, long Start, long Size, string Type, string? Uuid, string? Name)> SfdiskPartitions(string path)
    {
        var json = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{path}\"")).RootElement.GetProperty("partitiontable");
        return json.GetProperty("partitions").EnumerateArray().Select(p => (
            int.Parse(new string(p.GetProperty("node").GetString()!.Reverse().TakeWhile(char.IsAsciiDigit).Reverse().ToArray())),
            p.GetProperty("start").GetInt64(),
            p.GetProperty("size").GetInt64(),
            p.GetProperty("type").GetString()!,
            p.TryGetProperty("uuid", out var u) ? u.GetString() : null,
            p.TryGetProperty("name", out var n) ? n.GetString() : null)).ToList();
    }

    /// <summary>Overwrites <paramref name="length"/> bytes at <paramref name="offset"/> with <paramref name="value"/>.</summary>
    public static void Fill(string path, long offset, int length, byte value = 0)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(Enumerable.Repeat(value, length).ToArray());
    }

    public static void FlipByte(string path, long offset)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        var b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0xFF));
    }

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

