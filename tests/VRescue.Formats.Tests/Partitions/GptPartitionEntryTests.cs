// SPDX-License-Identifier: MIT
using System.Text;
using System.Text.Json;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Partitions;

public class GptPartitionEntryTests
{
    private static readonly GptHeader s_header = GptHeaderTests.Primary();

    private static GptPartitionEntry Entry(int index, ulong first, ulong last, string name = "", Guid? type = null) =>
        new(index, type ?? GptPartitionTypes.LinuxLvm, new Guid($"00000000-0000-0000-0000-{index:D12}"), first, last, 0, name);

    private static byte[] Array(params GptPartitionEntry[] entries)
    {
        var array = new byte[128 * 128];
        GptPartitionEntry.EncodeArray(entries, array, 128);
        return array;
    }

    [Fact]
    public void Entries_round_trip_and_empty_slots_are_skipped()
    {
        var a = Entry(1, 2048, 43007, "lvm") with { Attributes = 1UL << 60 };
        var b = Entry(3, 43008, 131038, "data", GptPartitionTypes.LinuxFilesystem);
        var decoded = GptPartitionEntry.DecodeArray(Array(a, b), 128, 128);
        Assert.Equal([a, b], decoded);
        Assert.Equal("Linux LVM", decoded[0].TypeName);
        Assert.True(decoded[1].TryGetByteRange(out var start, out var size));
        Assert.Equal(43008L * 512, start);
        Assert.Equal((131038L - 43008 + 1) * 512, size);
        Assert.Empty(GptPartitionEntry.Validate(decoded, s_header));
    }

    [Fact]
    public void Name_is_utf16le_trimmed_at_the_first_nul()
    {
        var array = Array(Entry(1, 2048, 4095));
        Encoding.Unicode.GetBytes("VG_XenStorage\0junk").CopyTo(array, 56);
        Assert.Equal("VG_XenStorage", GptPartitionEntry.DecodeArray(array, 1, 128)[0].Name);

        Encoding.Unicode.GetBytes(new string('x', 36)).CopyTo(array, 56);
        Assert.Equal(new string('x', 36), GptPartitionEntry.DecodeArray(array, 1, 128)[0].Name);
    }

    [Fact]
    public void Overlapping_entries_are_reported_once_per_intruder()
    {
        var entries = GptPartitionEntry.DecodeArray(Array(Entry(1, 2048, 10000), Entry(2, 5000, 6000), Entry(3, 9000, 12000)), 128, 128);
        var f = GptPartitionEntry.Validate(entries, s_header);
        Assert.Equal(["GPT_ENTRIES_OVERLAP", "GPT_ENTRIES_OVERLAP"], f.Select(x => x.Code));
        Assert.Equal([128L + 32, 256L + 32], f.Select(x => x.OffsetBytes!.Value));
    }

    [Fact]
    public void Entries_outside_the_usable_range_or_reversed_are_reported()
    {
        var entries = GptPartitionEntry.DecodeArray(Array(
            Entry(1, 10, 100), Entry(2, 2048, 200_000), Entry(3, 5000, 4000), Entry(4, ulong.MaxValue - 1, ulong.MaxValue)), 128, 128);
        var codes = GptPartitionEntry.Validate(entries, s_header).Select(f => f.Code).Order().ToArray();
        Assert.Equal(["GPT_ENTRY_END_BEFORE_START", "GPT_ENTRY_OUTSIDE_USABLE", "GPT_ENTRY_OUTSIDE_USABLE", "GPT_ENTRY_OUTSIDE_USABLE"], codes);
        Assert.False(entries[2].TryGetByteRange(out _, out _));
        Assert.False(entries[3].TryGetByteRange(out _, out _));
    }

    [Fact]
    public void Duplicate_unique_guids_are_a_warning()
    {
        var entries = GptPartitionEntry.DecodeArray(Array(Entry(1, 2048, 4095), Entry(2, 4096, 8191) with { UniqueGuid = Entry(1, 0, 0).UniqueGuid }), 128, 128);
        var f = Assert.Single(GptPartitionEntry.Validate(entries, s_header));
        Assert.Equal(("GPT_DUPLICATE_UNIQUE_GUID", Severity.Warning), (f.Code, f.Severity));
    }

    [Fact]
    public void Random_entry_arrays_never_throw()
    {
        var rng = new Random(99);
        var array = new byte[128 * 128];
        for (var i = 0; i < 500; i++)
        {
            rng.NextBytes(array);
            _ = GptPartitionEntry.Validate(GptPartitionEntry.DecodeArray(array, 128, 128), s_header);
        }
    }

    [Fact]
    public void Entry_size_below_128_is_a_caller_bug() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => GptPartitionEntry.DecodeArray(new byte[128], 1, 0));

    [Theory]
    [InlineData("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM", "8e00")]
    [InlineData("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem", "8300")]
    [InlineData("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap", "8200")]
    [InlineData("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System", "ef00")]
    [InlineData("21686148-6449-6E6F-744E-656564454649", "BIOS boot partition", "ef02")]
    [InlineData("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data", "0700")]
    public void Known_type_guids_have_names_and_sgdisk_codes(string guid, string name, string code)
    {
        Assert.Equal(name, GptPartitionTypes.Name(new Guid(guid)));
        Assert.Equal(code, GptPartitionTypes.SgdiskCode(new Guid(guid)));
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Table_written_by_our_encoders_is_accepted_by_sgdisk_and_sfdisk()
    {
        const long sectors = GptHeaderTests.DiskSectors;
        var lvm = new GptPartitionEntry(1, GptPartitionTypes.LinuxLvm, Guid.NewGuid(), 2048, 43007, 0, "xen-sr");
        var fs = new GptPartitionEntry(2, GptPartitionTypes.LinuxFilesystem, Guid.NewGuid(), 43008, sectors - 34, 0, "root");
        var array = new byte[128 * 128];
        GptPartitionEntry.EncodeArray([lvm, fs], array, 128);
        var primary = GptHeaderTests.Primary(Crc32.Ieee(array));
        var image = new byte[sectors * 512];
        new MbrPartitionTable(0, MbrLayout.BootSignatureValue,
            [new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1, (uint)(sectors - 1), 0x000200)]).Encode(image);
        primary.Encode(image.AsSpan(512, 512));
        array.CopyTo(image, 1024);
        array.CopyTo(image, (sectors - 33) * 512);
        primary.AsBackup((ulong)sectors - 33).Encode(image.AsSpan((int)((sectors - 1) * 512), 512));

        var path = Path.Combine(Path.GetTempPath(), $"vrescue-enc-{Guid.NewGuid():N}.img");
        try
        {
            File.WriteAllBytes(path, image);
            Assert.Contains("No problems found", Repo.Run("sgdisk", $"-v \"{path}\""));
            var json = JsonDocument.Parse(Repo.Run("sfdisk", $"--json \"{path}\"")).RootElement.GetProperty("partitiontable");
            Assert.Equal(primary.DiskGuid, json.GetProperty("id").GetGuid());
            var parts = json.GetProperty("partitions").EnumerateArray().ToArray();
            Assert.Equal(2, parts.Length);
            foreach (var (p, e) in parts.Zip(new[] { lvm, fs }))
            {
                Assert.Equal((long)e.FirstLba, p.GetProperty("start").GetInt64());
                Assert.Equal((long)(e.LastLba - e.FirstLba + 1), p.GetProperty("size").GetInt64());
                Assert.Equal(e.TypeGuid, p.GetProperty("type").GetGuid());
                Assert.Equal(e.UniqueGuid, p.GetProperty("uuid").GetGuid());
                Assert.Equal(e.Name, p.GetProperty("name").GetString());
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
