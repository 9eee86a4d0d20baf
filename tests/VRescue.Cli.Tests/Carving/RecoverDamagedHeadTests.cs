// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Carving;

/// <summary>
/// Two remedies at once: all LVM metadata gone (the carve fixture's damaged.img, real lvm2) and one VDI's VHD head
/// damaged on top: its footer copy at LV offset 0 corrupted or zeroed, and then its footer at the LV end zeroed too.
/// The dynamic header and BAT survive, so `recover` must still carve the VDI. And with the metadata intact
/// (original.img), the same VHD damage must not fail the VDI either. Truth: lvm2's segment map (lvs.json:
/// where the LV's first and last extents are) and the generator's guest sha256 (facts.json).
/// </summary>
public sealed class RecoverDamagedHeadTests : IDisposable
{
    private const string Lv = "VHD-cc000003-0000-4000-8000-000000000003";
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-damaged-head-").FullName;

    private static string FixtureDir => Path.Combine(Repo.FixtureCache, "carve");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact("sha256sum", Fixture = "carve")]
    public void Footer_copy_with_a_flipped_byte_takes_the_lv_end_footer_with_the_same_uuid()
    {
        var (image, fact, head, _) = Prepare("flipped");
        Patch(image, head + 28, "X"u8.ToArray());                            // creator application: the checksum no longer holds

        var v = Recover(image, fact.GetProperty("footerUuid").GetString()!, "out");

        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
        Assert.Contains(Warnings(v), w => w.StartsWith("CARVE_HEAD_FOOTER_DAMAGED", StringComparison.Ordinal) && w.Contains("damaged (checksum)", StringComparison.Ordinal)
            && w.Contains("has the uuid the damaged copy still carries", StringComparison.Ordinal));
    }

    [RealFact("sha256sum", Fixture = "carve")]
    public void Footer_copy_zeroed_takes_the_only_fitting_lv_end_footer()
    {
        var (image, fact, head, _) = Prepare("zeroed");
        Patch(image, head, new byte[512]);

        var v = Recover(image, fact.GetProperty("footerUuid").GetString()!, "out");

        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
        Assert.Contains(Warnings(v), w => w.StartsWith("CARVE_HEAD_FOOTER_DAMAGED", StringComparison.Ordinal) && w.Contains("is gone", StringComparison.Ordinal)
            && w.Contains("the only one no other head claims", StringComparison.Ordinal));
    }

    /// <summary>
    /// Both footers gone: the footer is rebuilt from the header and BAT, its virtual size raised to what the guest's ext4
    /// says (the last allocated block alone would cut the file system short), so the export is byte-identical again.
    /// </summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void Both_footers_gone_rebuilds_the_footer_with_the_guest_size_and_exports_exactly()
    {
        var (image, fact, head, tail) = Prepare("both");
        Patch(image, head, new byte[512]);
        Patch(image, tail, new byte[512]);
        var before = Repo.Sha256File(image);

        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, "out"), "--format", "raw", "--json");

        Assert.Equal(before, Repo.Sha256File(image));
        var v = r.Json.GetProperty("recovered").EnumerateArray().Single(x => Warnings(x).Any(w => w.StartsWith("CARVE_HEAD_FOOTER_DAMAGED", StringComparison.Ordinal)));
        Assert.Equal("exported", v.GetProperty("status").GetString());
        Assert.Contains(Warnings(v), w => w.Contains("rebuilt from the header and BAT", StringComparison.Ordinal));
        Assert.Contains(Warnings(v), w => w.StartsWith("CARVE_HEAD_SIZE_FROM_GUEST", StringComparison.Ordinal));
        Assert.Equal(fact.GetProperty("virtualSizeBytes").GetInt64(), v.GetProperty("virtualSizeBytes").GetInt64());
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), Repo.Sha256File(Path.Combine(_dir, "out", v.GetProperty("file").GetString()!)));
    }

    /// <summary>
    /// Footer copy and dynamic header both damaged: no BAT, nothing to carve the VDI by. It is lost, but recover says so
    /// with the extent, instead of leaving the VDI out without a word.
    /// </summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void Head_without_a_readable_header_is_named_in_the_notes()
    {
        var (image, fact, head, _) = Prepare("header");
        Patch(image, head + 512 + 40, "XX"u8.ToArray());                      // inside the header's parent uuid: its checksum fails
        var facts = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "facts.json"))).RootElement;
        var pe = (head - facts.GetProperty("peStartBytes").GetInt64()) / facts.GetProperty("extentSizeBytes").GetInt64();

        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, "out"), "--json");

        Assert.DoesNotContain(r.Json.GetProperty("recovered").EnumerateArray(), x => x.GetProperty("carve").ValueKind == JsonValueKind.Object
            && x.GetProperty("carve").GetProperty("footerUuid").GetString() == fact.GetProperty("footerUuid").GetString());
        Assert.Contains(r.Json.GetProperty("notes").EnumerateArray(), n => n.GetString()!.StartsWith("carving: CARVE_BAD_VHD_HEAD", StringComparison.Ordinal)
            && n.GetString()!.EndsWith($"PE(s) {pe}", StringComparison.Ordinal));
    }

    /// <summary>
    /// With the LVM metadata intact (original.img) and both footers of the VDI gone, the VHD cannot be opened as it
    /// stands: recover exports it through the repair `vrescue vhd repair` makes (footer rebuilt from the header and BAT,
    /// virtual size from the guest's ext4), byte-identical to the generator's guest content.
    /// </summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void With_metadata_intact_a_vhd_without_footers_is_exported_through_repair()
    {
        var (image, fact, head, tail) = Prepare("metadata-intact", "original.img");
        Patch(image, head, new byte[512]);
        Patch(image, tail, new byte[512]);
        var before = Repo.Sha256File(image);

        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, "out"), "--format", "raw", "--json");

        Assert.Equal(before, Repo.Sha256File(image));
        var v = r.Json.GetProperty("recovered").EnumerateArray().Single(x => x.GetProperty("uuid").GetString() == Lv["VHD-".Length..]);
        Assert.Equal("current", v.GetProperty("source").GetProperty("kind").GetString());
        Assert.Equal("exported", v.GetProperty("status").GetString());
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), Repo.Sha256File(Path.Combine(_dir, "out", v.GetProperty("file").GetString()!)));
        Assert.Contains(Warnings(v), w => w.Contains("exported through the repair", StringComparison.Ordinal) && w.Contains("footer: rebuilt", StringComparison.Ordinal));
    }

    /// <summary>
    /// Metadata gone and a BAT entry clobbered to point into the BAT: the carver puts that block in the one slot of
    /// tapdisk's block sequence no valid entry claims, so the extent holding it is placed by its bitmap sectors like
    /// the others, and the export (through the repair view) is byte-identical.
    /// </summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void Carved_vdi_with_a_bat_entry_into_the_metadata_gets_its_block_back_by_elimination()
    {
        var (image, fact, head, _) = Prepare("carve-bat");
        Patch(image, head + 0x600 + 4, [0, 0, 0, 3]);                         // BAT[1] = sector 3 (big-endian), inside the BAT

        var v = Recover(image, fact.GetProperty("footerUuid").GetString()!, "out");

        Assert.Contains(Warnings(v), w => w.StartsWith("CARVE_BAT_ENTRIES_INFERRED", StringComparison.Ordinal));
        Assert.Equal(0, v.GetProperty("carve").GetProperty("guessedBytes").GetInt64());
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
    }

    /// <summary>
    /// With the metadata intact, a BAT entry clobbered to point into the BAT itself: read as it stands, that block would
    /// be metadata bytes passed off as guest data. recover exports through the repair, which places the block by
    /// elimination (the one bitmap sector on the grid no entry claims), byte-identical to the generator's guest content.
    /// </summary>
    [RealFact("sha256sum", Fixture = "carve")]
    public void With_metadata_intact_a_bat_entry_into_the_metadata_is_repaired_not_read()
    {
        var (image, fact, head, _) = Prepare("bat", "original.img");
        Patch(image, head + 0x600 + 4, [0, 0, 0, 3]);                         // BAT[1] = sector 3 (big-endian), inside the BAT
        var before = Repo.Sha256File(image);

        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, "out"), "--format", "raw", "--json");

        Assert.Equal(before, Repo.Sha256File(image));
        var v = r.Json.GetProperty("recovered").EnumerateArray().Single(x => x.GetProperty("uuid").GetString() == Lv["VHD-".Length..]);
        Assert.Equal("exported", v.GetProperty("status").GetString());
        Assert.Contains(Warnings(v), w => w.StartsWith("VHD_BAT_ENTRY_IN_METADATA", StringComparison.Ordinal));
        Assert.Contains(Warnings(v), w => w.Contains("exported through the repair", StringComparison.Ordinal) && w.Contains("by elimination", StringComparison.Ordinal));
        Assert.Equal(fact.GetProperty("guestSha256").GetString(), v.GetProperty("sha256").GetString());
    }

    /// <summary>A copy of the fixture image; the VDI's facts; LV offset 0 and LV end - 512 as image offsets (lvm2's segment map).</summary>
    private (string Image, JsonElement Fact, long Head, long Tail) Prepare(string name, string fixtureImage = "damaged.img")
    {
        var image = Path.Combine(_dir, name + ".img");
        Repo.Run("cp", $"--sparse=always {Path.Combine(FixtureDir, fixtureImage)} {image}");
        var facts = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "facts.json"))).RootElement;
        var fact = facts.GetProperty("vdis").EnumerateArray().Single(v => v.GetProperty("lvName").GetString() == Lv);
        var peStart = facts.GetProperty("peStartBytes").GetInt64();
        var extent = facts.GetProperty("extentSizeBytes").GetInt64();
        var lastLe = (fact.GetProperty("lvSizeBytes").GetInt64() / extent) - 1;
        var segments = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixtureDir, "lvs.json"))).RootElement.EnumerateArray()
            .Where(s => s.GetProperty("lv_name").GetString() == Lv).ToList();
        long Pe(long le)
        {
            var s = segments.Single(s => long.Parse(s.GetProperty("seg_start_pe").GetString()!) <= le
                && le < long.Parse(s.GetProperty("seg_start_pe").GetString()!) + long.Parse(s.GetProperty("seg_size_pe").GetString()!));
            var first = long.Parse(s.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-')[0]);
            return first + le - long.Parse(s.GetProperty("seg_start_pe").GetString()!);
        }

        return (image, fact, peStart + (Pe(0) * extent), peStart + (Pe(lastLe) * extent) + extent - 512);
    }

    private JsonElement Recover(string image, string footerUuid, string outName)
    {
        var before = Repo.Sha256File(image);
        var r = Cli.Run("recover", image, "--out", Path.Combine(_dir, outName), "--format", "raw", "--json");
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.Equal(before, Repo.Sha256File(image));
        var v = r.Json.GetProperty("recovered").EnumerateArray().Single(x => x.GetProperty("carve").ValueKind == JsonValueKind.Object
            && x.GetProperty("carve").GetProperty("footerUuid").GetString() == footerUuid);
        Assert.Equal("exported", v.GetProperty("status").GetString());
        return v;
    }

    private static IEnumerable<string> Warnings(JsonElement v) => v.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!);

    private static void Patch(string path, long offset, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }
}
