// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.Cli.Tests.Guard;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Export;

/// <summary>
/// `vrescue recover` against real read errors. What is real: the SR (lvm2 + blktap-layout VHDs, carve fixture), the
/// fault (nbdkit's ddrescue filter fails reads of a 64 KiB range of a copy of the image with EIO, served as a file by
/// nbdfuse, so VRescue's reads go through the kernel and fail there), and the oracle: the bad range is chosen from
/// lvm2's `lvs --segments` (LV offset -> image offset) and `qemu-img map` of the LV's bytes (LV offset -> guest
/// offset), and every other VDI is checked against the fixture's facts (lvm2 segment maps, ext4 images). Only the
/// reference content of the damaged VDI comes from a clean `vrescue recover`, itself checked against the facts.
/// </summary>
public sealed class RecoverBadSectorTests
{
    private const long KiB = 1024;
    private const long MiB = 1024 * KiB;
    private const long BadBytes = 64 * KiB;
    private const string DamagedLv = "VHD-cc000003-0000-4000-8000-000000000003";
    private static readonly TimeSpan s_recoverTimeout = TimeSpan.FromMinutes(3);

    private static string Fixture => Path.Combine(Repo.FixtureCache, "carve");

    /// <summary>The bad range as lvm2 and qemu-img place it: image offset, LV offset, guest offset.</summary>
    private sealed record BadRange(long ImageOffset, long LvOffset, long GuestOffset);

    /// <summary>
    /// The LV's bytes copied out through lvm2's segment map, then `qemu-img map` of them: the first allocated data
    /// range that lies in the LV's second extent or later (the footer copy, header and BAT stay readable) where, 1 MiB +
    /// <paramref name="sectorShift"/> into it, 64 KiB stay inside that range and extent and hold guest data: the LV
    /// bytes there are not zeros and equal the <paramref name="reference"/> at the guest offset qemu-img gives.
    /// </summary>
    private static BadRange ChooseBadRange(string image, string workDir, long sectorShift, byte[] reference)
    {
        var facts = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "facts.json"))).RootElement;
        var peStart = facts.GetProperty("peStartBytes").GetInt64();
        var extent = facts.GetProperty("extentSizeBytes").GetInt64();
        var pes = new List<long>();
        foreach (var seg in JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "lvs.json"))).RootElement.EnumerateArray()
                     .Where(s => s.GetProperty("lv_name").GetString() == DamagedLv)
                     .OrderBy(s => long.Parse(s.GetProperty("seg_start_pe").GetString()!)))
        {
            // seg_pe_ranges: "/dev/loop0:5-6"
            var range = seg.GetProperty("seg_pe_ranges").GetString()!.Split(':')[1].Split('-');
            for (var pe = long.Parse(range[0]); pe <= long.Parse(range[1]); pe++)
            {
                pes.Add(pe);
            }
        }

        var lvFile = Path.Combine(workDir, "lv.vhd");
        using (var src = File.OpenRead(image))
        using (var dst = File.Create(lvFile))
        {
            var buffer = new byte[extent];
            foreach (var pe in pes)
            {
                src.Position = peStart + (pe * extent);
                src.ReadExactly(buffer);
                dst.Write(buffer);
            }
        }

        var lvBytes = File.ReadAllBytes(lvFile);

        var map = JsonDocument.Parse(KernelScratch.Run("qemu-img", "map", "-f", "vpc", "--output=json", lvFile)).RootElement;
        var into = MiB + sectorShift;
        foreach (var e in map.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean()))
        {
            var lvOffset = e.GetProperty("offset").GetInt64() + into;
            var guestOffset = e.GetProperty("start").GetInt64() + into;
            if (lvOffset - into >= extent && e.GetProperty("length").GetInt64() >= into + BadBytes
                && lvOffset / extent == (lvOffset + BadBytes - 1) / extent)
            {
                var stored = lvBytes.AsSpan((int)lvOffset, (int)BadBytes);
                if (stored.ContainsAnyExcept((byte)0) && stored.SequenceEqual(reference.AsSpan((int)guestOffset, (int)BadBytes)))
                {
                    return new BadRange(peStart + (pes[(int)(lvOffset / extent)] * extent) + (lvOffset % extent), lvOffset, guestOffset);
                }
            }
        }

        throw new InvalidOperationException("qemu-img map shows no written guest data past the first extent of " + DamagedLv);
    }

    /// <summary>A GNU ddrescue mapfile (current-position line, then pos/size/status blocks) with one bad range.</summary>
    private static string Mapfile(long imageBytes, long badOffset) =>
        "# Mapfile. Created by GNU ddrescue version 1.27\n" +
        "# current_pos  current_status  current_pass\n" +
        "0x00000000     +               1\n" +
        "#      pos        size  status\n" +
        $"0x{0:X8}  0x{badOffset:X8}  +\n" +
        $"0x{badOffset:X8}  0x{BadBytes:X8}  -\n" +
        $"0x{badOffset + BadBytes:X8}  0x{imageBytes - badOffset - BadBytes:X8}  +\n";

    /// <summary>Runs the CLI in-process with a deadline (a read that never returns must fail the test, not hang it).</summary>
    private static Cli.Result RunWithTimeout(params string[] args)
    {
        var run = Task.Run(() => Cli.Run(args));
        Assert.True(run.Wait(s_recoverTimeout), $"vrescue {string.Join(' ', args)} did not finish within {s_recoverTimeout}");
        var r = run.Result;
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr, StringComparison.Ordinal);
        return r;
    }

    private static Dictionary<string, JsonElement> ByLv(JsonElement recover) =>
        recover.GetProperty("recovered").EnumerateArray().ToDictionary(v => v.GetProperty("chain")[0].GetProperty("lvName").GetString()!);

    /// <summary>sha256 of each VDI's guest content from the fixture's facts (VHD guest views and raw ext4 images).</summary>
    private static Dictionary<string, string> FactsSha256()
    {
        var facts = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "facts.json"))).RootElement;
        var sha = facts.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("lvName").GetString()!, v => v.GetProperty("guestSha256").GetString()!);
        foreach (var raw in facts.GetProperty("rawVdis").EnumerateArray())
        {
            sha[raw.GetProperty("lvName").GetString()!] = raw.GetProperty("sha256").GetString()!;
        }

        return sha;
    }

    // sectorShift 0: the bad range starts on a 4 KiB boundary; 1536: three 512-byte sectors past one, as a ddrescue
    // map of a 512-byte-sector disk has it (the page cache reads whole 4 KiB pages, so this needs direct reads).
    [RealTheory("nbdkit", "nbdfuse", "fusermount3", "qemu-img", Fixture = "carve")]
    [InlineData(0L)]
    [InlineData(1536L)]
    public void Recover_through_real_bad_sectors_zeroes_and_reports_only_the_bad_guest_range(long sectorShift)
    {
        using var s = new KernelScratch();
        var image = s.PathOf("sr.img");
        File.Copy(Path.Combine(Fixture, "original.img"), image);
        var imageSha256 = Repo.Sha256File(image);
        var facts = FactsSha256();

        // Reference: the same image, no fault; the damaged VDI must match lvm2/xenvhd's facts.
        var clean = RunWithTimeout("recover", image, "--out", s.PathOf("clean"), "--format", "raw", "--json");
        var cleanVdis = ByLv(clean.Json);
        Assert.Equal(facts[DamagedLv], cleanVdis[DamagedLv].GetProperty("sha256").GetString());
        var reference = File.ReadAllBytes(Path.Combine(s.PathOf("clean"), cleanVdis[DamagedLv].GetProperty("file").GetString()!));

        var bad = ChooseBadRange(image, s.Dir, sectorShift, reference);
        Console.Error.WriteLine($"bad range: image 0x{bad.ImageOffset:X}, LV {DamagedLv} offset {bad.LvOffset}, guest {bad.GuestOffset}, {BadBytes} bytes");

        var mapfile = s.PathOf("sr.map");
        File.WriteAllText(mapfile, Mapfile(new FileInfo(image).Length, bad.ImageOffset));
        var fuse = Directory.CreateDirectory(s.PathOf("fuse")).FullName;
        s.Start("nbdfuse", fuse, "--command", "nbdkit", "-s", "--filter=ddrescue", "file", "file=" + image, "ddrescue-mapfile=" + mapfile);
        s.OnDispose(() =>
        {
            // A reader still inside the mount keeps it busy: detach lazily then, so nbdfuse can exit and be reaped.
            if (Repo.Exec("fusermount3", "-u", fuse).ExitCode != 0)
            {
                KernelScratch.Run("fusermount3", "-u", "-z", fuse);
            }
        });
        var served = Path.Combine(fuse, "nbd");
        Assert.True(KernelScratch.WaitFor(() => File.Exists(served), TimeSpan.FromSeconds(15)), "nbdfuse did not expose " + served);

        // The fault is real: the page holding the first bad byte fails, the page before it does not.
        using (var probe = File.OpenHandle(served))
        {
            Assert.ThrowsAny<IOException>(() => RandomAccess.Read(probe, new byte[512], bad.ImageOffset - (bad.ImageOffset % 4096)));
            Assert.Equal(512, RandomAccess.Read(probe, new byte[512], bad.ImageOffset - (bad.ImageOffset % 4096) - 4096));
        }

        var r = RunWithTimeout("recover", served, "--out", s.PathOf("out"), "--format", "raw", "--json");
        Assert.Equal(ExitCodes.Damaged, r.ExitCode);
        var vdis = ByLv(r.Json);

        var damaged = vdis[DamagedLv];
        Assert.Equal("partial", damaged.GetProperty("status").GetString());
        var reported = damaged.GetProperty("unreadableRanges").EnumerateArray()
            .Select(u => (Offset: u.GetProperty("offsetBytes").GetInt64(), Length: u.GetProperty("lengthBytes").GetInt64())).ToList();
        Console.Error.WriteLine("reported unreadable guest ranges: " + string.Join(", ", reported.Select(u => $"{u.Offset}+{u.Length}")));
        Assert.Contains(reported, u => u.Offset <= bad.GuestOffset && u.Offset + u.Length >= bad.GuestOffset + BadBytes);
        Assert.True(reported.Sum(u => u.Length) <= 4 * MiB, "unreadable ranges total more than 4 MiB");
        Assert.Equal(new[] { (bad.GuestOffset, BadBytes) }, reported);
        Assert.Contains(damaged.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!),
            w => w.Contains($"{BadBytes} bytes", StringComparison.Ordinal) && w.Contains($"LV offset {bad.LvOffset}", StringComparison.Ordinal));

        // Outside the bad guest range the output is the reference byte for byte; inside it, zeros.
        var got = File.ReadAllBytes(Path.Combine(s.PathOf("out"), damaged.GetProperty("file").GetString()!));
        Assert.Equal(reference.Length, got.Length);
        Assert.True(got.AsSpan(0, (int)bad.GuestOffset).SequenceEqual(reference.AsSpan(0, (int)bad.GuestOffset)), "bytes before the bad range differ");
        Assert.False(got.AsSpan((int)bad.GuestOffset, (int)BadBytes).ContainsAnyExcept((byte)0), "the bad range is not zeros");
        var after = (int)(bad.GuestOffset + BadBytes);
        Assert.True(got.AsSpan(after).SequenceEqual(reference.AsSpan(after)), "bytes after the bad range differ");

        // Every other VDI is untouched by the fault: the facts' sha256, or (the deleted VDI, which has none) the clean run's.
        foreach (var (lv, vdi) in vdis.Where(v => v.Key != DamagedLv))
        {
            Assert.Equal("exported", vdi.GetProperty("status").GetString());
            var expected = facts.TryGetValue(lv, out var f) ? f : cleanVdis[lv].GetProperty("sha256").GetString();
            Assert.Equal(expected, vdi.GetProperty("sha256").GetString());
        }

        // The hidden base copy is no VDI of its own: its data is in the web01 leaf's sha256.
        Assert.Equal(cleanVdis.Keys.Order(), vdis.Keys.Order());
        Assert.All(facts.Keys.Where(lv => lv != "VHD-ab000006-0000-4000-8000-000000000006"), lv => Assert.True(vdis.ContainsKey(lv), lv + " not recovered"));
        Assert.Equal(imageSha256, Repo.Sha256File(image));
    }
}
