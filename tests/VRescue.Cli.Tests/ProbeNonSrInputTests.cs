// SPDX-License-Identifier: MIT
using VRescue.TestSupport;

namespace VRescue.Cli.Tests;

/// <summary>Inputs that are not SRs get one clear diagnosis line, a non-zero exit, and no stack trace.</summary>
public sealed class ProbeNonSrInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-nonsr-").FullName;

    private string MakeFile(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void AssertCleanFailure(Cli.Result r, string expectedWording)
    {
        Assert.NotEqual(ExitCodes.Ok, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.DoesNotContain("Exception", r.Stdout + r.Stderr);
        Assert.Contains(expectedWording, r.Stdout + r.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Empty_file_is_diagnosed_as_empty()
    {
        var path = MakeFile("empty.img", []);
        var r = Cli.Run("probe", path);
        AssertCleanFailure(r, "empty");
        Assert.Equal(ExitCodes.NotRecognised, r.ExitCode);
    }

    [Fact]
    public void Random_bytes_are_not_an_sr_and_the_file_is_unchanged()
    {
        var bytes = new byte[8 << 20];
        new Random(1234).NextBytes(bytes);
        var path = MakeFile("random.img", bytes);
        var before = Repo.Sha256File(path);
        var r = Cli.Run("probe", path);
        AssertCleanFailure(r, "not a XenServer SR");
        Assert.Equal(ExitCodes.NotRecognised, r.ExitCode);
        Assert.Equal(before, Repo.Sha256File(path));
    }

    /// <summary>
    /// recover carves when no metadata is readable, but only what has VHD heads on the MiB grid: random bytes get the
    /// not-an-SR diagnosis, no carved.vg and no VDI files.
    /// </summary>
    [Fact]
    public void Recover_of_random_bytes_does_not_carve_and_says_not_an_sr()
    {
        var bytes = new byte[16 << 20];
        new Random(99).NextBytes(bytes);
        var path = MakeFile("random-recover.img", bytes);
        var outDir = Path.Combine(_dir, "out");
        var r = Cli.Run("recover", path, "--out", outDir);
        AssertCleanFailure(r, "not a XenServer SR");
        Assert.False(File.Exists(Path.Combine(outDir, "carved.vg")));
        Assert.Empty(Directory.Exists(outDir) ? Directory.GetFiles(outDir, "*.vhd") : []);
    }

    [Fact]
    public void Missing_file_is_an_io_error_with_the_path()
    {
        var r = Cli.Run("probe", Path.Combine(_dir, "nope.img"));
        Assert.Equal(ExitCodes.IoError, r.ExitCode);
        Assert.Contains("nope.img", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [RealFact("mkfs.ext4")]
    public void Ext4_image_is_named_as_such_not_an_sr()
    {
        var path = Path.Combine(_dir, "fs.ext4");
        Repo.Run("truncate", $"-s 16M {path}");
        Repo.Run(Repo.Which("mkfs.ext4")!, $"-q -F -L guestroot {path}");
        var before = Repo.Sha256File(path);
        var r = Cli.Run("probe", path);
        AssertCleanFailure(r, "ext4");
        Assert.Contains("guestroot", r.Stdout);
        Assert.Equal(ExitCodes.NotRecognised, r.ExitCode);
        Assert.Equal(before, Repo.Sha256File(path));

        var json = Cli.Run("probe", path, "--json");
        Assert.Equal("not-an-sr", json.Json.GetProperty("failureMode").GetString());
        Assert.Empty(json.Json.GetProperty("srs").EnumerateArray());
    }

    [Fact]
    public void No_arguments_is_a_usage_error()
    {
        var r = Cli.Run("probe");
        Assert.Equal(ExitCodes.Usage, r.ExitCode);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
