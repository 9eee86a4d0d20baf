// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Partitions;

/// <summary>
/// Damage recipes on copies of the sr-gpt fixture (sgdisk + lvm): scan finds the PV where the original table put
/// it, repair writes a table into a copy that sgdisk, sfdisk, pvs and vrescue probe accept, and the source and every
/// non-table sector stay as they were.
/// </summary>
public sealed class PartitionsRepairFixtureTests : IDisposable
{
    private const int Sector = 512;
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-partscan-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>dd-style damage recipes; sector numbers for the 614400-sector fixture disk.</summary>
    private static void Damage(string path, string recipe)
    {
        var sectors = new FileInfo(path).Length / Sector;
        switch (recipe)
        {
            case "primary-gpt-zeroed":
                Zero(path, 1, 33);
                break;
            case "both-gpt-zeroed":
                Zero(path, 1, 33);
                Zero(path, sectors - 33, 33);
                break;
            case "protective-mbr-zeroed":
                Zero(path, 0, 1);
                break;
            case "windows-initialised":
                // Another OS "initialises" the disk: the first MiB is cleared and a fresh DOS label with one NTFS
                // partition is written (fdisk, as Windows Disk Management would); the backup GPT at the end survives.
                Zero(path, 0, 2048);
                Repo.Run("sh", $"-c \"echo 2048,100M,7 | sfdisk --quiet --no-reread --no-tell-kernel --label dos '{path}'\"");
                break;
            default:
                throw new ArgumentException(recipe);
        }
    }

    private static void Zero(string path, long firstSector, long count) =>
        Repo.Run("dd", $"if=/dev/zero of=\"{path}\" bs=512 seek={firstSector} count={count} conv=notrunc status=none");

    [RealTheory("sgdisk", "sfdisk", "lvm", "losetup", Root = true, Fixture = "sr-gpt")]
    [InlineData("primary-gpt-zeroed", "backup-gpt")]
    [InlineData("both-gpt-zeroed", "found")]
    [InlineData("protective-mbr-zeroed", "primary-gpt")]
    [InlineData("windows-initialised", "backup-gpt")]
    public void Damaged_gpt_is_found_repaired_into_a_copy_and_probes_like_the_healthy_image(string recipe, string expectedSource)
    {
        var fx = new SrFixture("sr-gpt");
        var srOffset = fx.Sr.GetProperty("srOffsetBytes").GetInt64();
        var damaged = Path.Combine(_dir, recipe + ".img");
        Repo.Run("cp", $"--sparse=always \"{fx.ImagePath}\" \"{damaged}\"");
        Damage(damaged, recipe);
        var sourceHash = Repo.Sha256File(damaged);

        var scan = Cli.Run("partitions", "scan", damaged, "--json");
        Assert.Equal(ExitCodes.Damaged, scan.ExitCode);
        var json = scan.Json;
        var pv = json.GetProperty("found").EnumerateArray().Single(f => f.GetProperty("kind").GetString() == "lvm-pv" && f.GetProperty("nestedIn").ValueKind == JsonValueKind.Null);
        Assert.Equal(srOffset, pv.GetProperty("startBytes").GetInt64());
        Assert.Equal(fx.Sr.GetProperty("srSizeBytes").GetInt64(), pv.GetProperty("sizeBytes").GetInt64());
        Assert.Equal(expectedSource, json.GetProperty("proposalSource").GetString());
        Assert.Equal("gpt", json.GetProperty("proposedTable").GetString());
        Assert.Contains(json.GetProperty("proposed").EnumerateArray(), p => p.GetProperty("startBytes").GetInt64() == srOffset);

        var repaired = Path.Combine(_dir, recipe + ".repaired.img");
        var repair = Cli.Run("partitions", "repair", damaged, "--into", repaired, "--json");
        Assert.True(repair.ExitCode == ExitCodes.Ok, repair.Stderr);
        Assert.Equal(sourceHash, Repo.Sha256File(damaged));
        var writes = repair.Json.GetProperty("writes").EnumerateArray()
            .Select(w => (Start: w.GetProperty("offsetBytes").GetInt64(), End: w.GetProperty("offsetBytes").GetInt64() + w.GetProperty("lengthBytes").GetInt64()))
            .ToList();
        foreach (var offset in DifferingSectors(damaged, repaired))
        {
            Assert.True(writes.Any(w => offset >= w.Start && offset < w.End), $"sector at byte {offset} changed outside the table sectors");
        }

        Assert.Contains("No problems found", Repo.Run("sgdisk", $"-v \"{repaired}\""));
        var table = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{repaired}\"")).RootElement.GetProperty("partitiontable");
        var lvm = table.GetProperty("partitions").EnumerateArray().Single(p => p.GetProperty("type").GetString() == "E6D6D379-F507-44C2-A23C-238F2A3DF928");
        Assert.Equal(srOffset / Sector, lvm.GetProperty("start").GetInt64());

        using (var loop = new LoopLvm(repaired, lvm.GetProperty("start").GetInt64() * Sector, lvm.GetProperty("size").GetInt64() * Sector))
        {
            var row = Assert.Single(loop.Report("pvs", "pv", "pv_name,vg_name,pv_uuid"));
            Assert.Equal(fx.Sr.GetProperty("vgName").GetString(), row.GetProperty("vg_name").GetString());
        }

        Assert.Equal(ProbeSummary(fx.ImagePath), ProbeSummary(repaired));
        AssertExportsLikeTheHealthyImage(fx, repaired);
        if (expectedSource != "found")
        {
            // From a GPT copy the original table comes back whole: same entries, same numbers, names and GUIDs.
            Assert.Equal(Normalise(Repo.Run("sfdisk", $"--json \"{fx.ImagePath}\""), fx.ImagePath), Normalise(Repo.Run("sfdisk", $"--json \"{repaired}\""), repaired));
        }
    }

    /// <summary>The repaired copy exports every VDI with the content the generator put in (sr.json sourceExt4Sha256).</summary>
    private void AssertExportsLikeTheHealthyImage(SrFixture fx, string repaired)
    {
        var outDir = Path.Combine(_dir, Path.GetFileNameWithoutExtension(repaired) + ".export");
        var export = Cli.Run("export", repaired, "--out", outDir, "--format", "raw", "--json");
        Assert.True(export.ExitCode == ExitCodes.Ok, export.Stdout + export.Stderr);
        var files = export.Json.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!, v => v.GetProperty("file").GetString()!);
        foreach (var vdi in fx.Sr.GetProperty("vdis").EnumerateArray())
        {
            Assert.Equal(vdi.GetProperty("sourceExt4Sha256").GetString(), Repo.Sha256File(Path.Combine(outDir, files[vdi.GetProperty("uuid").GetString()!])));
        }
    }

    [RealFact(Fixture = "sr-gpt")]
    public void Repair_into_an_existing_copy_and_refusals_for_the_source_itself()
    {
        var fx = new SrFixture("sr-gpt");
        var damaged = Path.Combine(_dir, "damaged.img");
        Repo.Run("cp", $"--sparse=always \"{fx.ImagePath}\" \"{damaged}\"");
        Damage(damaged, "both-gpt-zeroed");
        var hash = Repo.Sha256File(damaged);
        var symlink = Path.Combine(_dir, "symlink.img");
        File.CreateSymbolicLink(symlink, damaged);
        var hardlink = Path.Combine(_dir, "hardlink.img");
        Repo.Run("ln", $"\"{damaged}\" \"{hardlink}\"");
        foreach (var target in new[] { damaged, symlink, hardlink })
        {
            var r = Cli.Run("partitions", "repair", damaged, "--into", target);
            Assert.Equal(ExitCodes.Usage, r.ExitCode);
            Assert.Contains("REPAIR_TARGET_IS_SOURCE", r.Stderr);
        }

        Assert.Equal(hash, Repo.Sha256File(damaged));
        var other = Path.Combine(_dir, "other.img");
        Repo.Run("truncate", $"-s {new FileInfo(damaged).Length} \"{other}\"");
        var notCopy = Cli.Run("partitions", "repair", damaged, "--into", other);
        Assert.Contains("REPAIR_TARGET_NOT_A_COPY", notCopy.Stderr);

        var copy = Path.Combine(_dir, "copy.img");
        Repo.Run("cp", $"--sparse=always \"{damaged}\" \"{copy}\"");
        var ok = Cli.Run("partitions", "repair", damaged, "--into", copy);
        Assert.Equal(ExitCodes.Ok, ok.ExitCode);
        Assert.Contains("writing into existing copy", ok.Stdout);
        Assert.Contains("No problems found", Repo.Run("sgdisk", $"-v \"{copy}\""));
        Assert.Equal(hash, Repo.Sha256File(damaged));
    }

    [RealFact(Fixture = "sr-gpt")]
    public void Healthy_image_scans_clean_and_needs_no_repair()
    {
        var fx = new SrFixture("sr-gpt");
        var r = Cli.Run("partitions", "scan", fx.ImagePath, "--json");
        Assert.Equal(ExitCodes.Ok, r.ExitCode);
        var json = r.Json;
        Assert.Equal("gpt", json.GetProperty("table").GetString());
        Assert.True(json.GetProperty("primaryValid").GetBoolean());
        Assert.True(json.GetProperty("backupValid").GetBoolean());
        Assert.Equal("current", json.GetProperty("proposalSource").GetString());
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(fx.Directory, "partitions.json"))).RootElement
            .GetProperty("partitiontable").GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("start").GetInt64() * Sector).ToList();
        Assert.Equal(expected, json.GetProperty("proposed").EnumerateArray().Select(p => p.GetProperty("startBytes").GetInt64()));
        var human = Cli.Run("partitions", "scan", fx.ImagePath);
        Assert.Contains("nothing to repair", human.Stdout);
    }

    /// <summary>Byte offsets of the 512-byte sectors that differ between two equally long files.</summary>
    internal static IEnumerable<long> DifferingSectors(string a, string b)
    {
        using var fa = File.OpenRead(a);
        using var fb = File.OpenRead(b);
        Assert.Equal(fa.Length, fb.Length);
        var ba = new byte[4 << 20];
        var bb = new byte[4 << 20];
        for (long offset = 0; offset < fa.Length; offset += ba.Length)
        {
            var n = fa.Read(ba);
            fb.ReadExactly(bb.AsSpan(0, n));
            if (ba.AsSpan(0, n).SequenceEqual(bb.AsSpan(0, n)))
            {
                continue;
            }

            for (var s = 0; s < n; s += Sector)
            {
                if (!ba.AsSpan(s, Sector).SequenceEqual(bb.AsSpan(s, Sector)))
                {
                    yield return offset + s;
                }
            }
        }
    }

    /// <summary>What probe says about the SR, with the image path taken out.</summary>
    internal static string ProbeSummary(string image)
    {
        var r = Cli.Run("probe", image, "--json");
        var json = r.Json;
        return json.GetProperty("failureMode").GetString() + "\n" + json.GetProperty("srs").GetRawText().Replace(image, "IMAGE");
    }

    private static string Normalise(string sfdiskJson, string image) =>
        sfdiskJson.Replace(image, "IMAGE");
}
