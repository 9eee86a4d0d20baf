// SPDX-License-Identifier: MIT
using System.Text.Json;
using System.Text.RegularExpressions;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Carving;

/// <summary>
/// Two remedies at once: the GPT (primary and backup) and everything of the PV before pe_start (label, metadata ring)
/// zeroed on a copy of the sr-gpt fixture (real sgdisk, lvm2, qemu-img). Its VHDs were made by qemu-img and copied
/// into the LVs, so their blocks lie off the grid tapdisk writes and the carver cannot check those extents by content.
/// What must hold: no VDI comes back wrong while passed as sure. Truth: the footer uuid vhdiinfo reads from each
/// fixture VHD and the sha256 of the ext4 image it was made from (sr.json).
/// </summary>
public sealed partial class RecoverCombinedDamageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-combined-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact("sha256sum", Fixture = "sr-gpt")]
    public void Partition_table_and_lvm_metadata_both_gone_no_vdi_is_passed_as_sure_when_wrong()
    {
        var fx = new SrFixture("sr-gpt");
        var image = Path.Combine(_dir, "image.img");
        Repo.Run("cp", $"--sparse=always {fx.ImagePath} {image}");
        var length = new FileInfo(image).Length;
        var pvStart = fx.Sr.GetProperty("srOffsetBytes").GetInt64();
        Zero(image, 0, 34 * 512);                                              // protective MBR, primary GPT header and entries
        Zero(image, length - (33 * 512), 33 * 512);                           // backup GPT entries and header
        Zero(image, pvStart, fx.Sr.GetProperty("peStartBytes").GetInt64());    // LVM label, mda header, metadata ring
        var before = Repo.Sha256File(image);

        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, "out"), "--json");

        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.Equal(before, Repo.Sha256File(image));
        Assert.Contains(r.Json.GetProperty("metadata").EnumerateArray(), m => m.GetProperty("kind").GetString() == "carved" && m.GetProperty("used").GetBoolean());
        Assert.Equal("lvm-metadata-damaged", r.Json.GetProperty("failureMode").GetString());
        Assert.Contains($"the PV probably began at byte {pvStart}, in a partition", r.Json.GetProperty("diagnosis").GetString());
        var truth = fx.Sr.GetProperty("vdis").EnumerateArray().Where(v => v.GetProperty("kind").GetString() == "vhd")
            .ToDictionary(v => FooterUuid(Path.Combine(fx.Directory, "vdis", v.GetProperty("vhdiinfo").GetString()!)), v => v.GetProperty("expectedSha256").GetString());
        var recovered = r.Json.GetProperty("recovered").EnumerateArray().Where(v => v.GetProperty("carve").ValueKind == JsonValueKind.Object).ToList();
        Assert.Equal(truth.Count, recovered.Count);
        var right = 0;
        foreach (var v in recovered)
        {
            var carve = v.GetProperty("carve");
            var footer = carve.GetProperty("footerUuid").GetString()!;
            var flagged = v.GetProperty("partial").GetBoolean() || carve.GetProperty("guessedBytes").GetInt64() > 0;
            if (v.GetProperty("sha256").GetString() == truth[footer])
            {
                right++;
            }
            else
            {
                Assert.True(flagged, $"{footer}: wrong content exported without a partial or guessed mark: {v}");
            }

            // qemu-img's blocks are 2 MiB + 512 bytes packed from 0x800: every VDI with blocks past LE 0 says so.
            if (flagged)
            {
                Assert.Contains(v.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("CARVE_VHD_OFF_GRID", StringComparison.Ordinal)
                    || w.GetString()!.StartsWith("CARVE_EXTENTS_UNPLACED", StringComparison.Ordinal));
            }
        }

        Assert.True(right >= 1, "the VDI whose extents are all proven (head, ext4 superblock copy) comes back exactly");
    }

    private static string FooterUuid(string vhdiinfoTxt) => IdentifierLine().Match(File.ReadAllText(vhdiinfoTxt)).Groups[1].Value;

    [GeneratedRegex(@"Identifier\s*:\s*([0-9a-f-]{36})")]
    private static partial Regex IdentifierLine();

    private static void Zero(string path, long offset, long count)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(new byte[count]);
    }
}
