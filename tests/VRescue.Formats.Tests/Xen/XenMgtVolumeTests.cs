// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Formats.Xen;

namespace VRescue.Formats.Tests.Xen;

/// <summary>
/// MGT volumes are built here byte by byte with string formatting that follows xapi-project/sm
/// libs/sm/srmetadata.py (buildHeader, getSRInfoForSectors, getVdiInfo, getSector), independently of
/// <see cref="XenMgtVolume.Encode(XenMgtSrInfo, IReadOnlyList{XenMgtVdiRecord}, long?)"/>.
/// </summary>
public class XenMgtVolumeTests
{
    /// <summary>A hang guard, not a speed check: bounded work finishes far below it even on a loaded machine.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    private const string SrUuid = "5c7e3a2b-91d4-4f6e-8a0b-1c2d3e4f5a6b";
    private const string VdiA = "0d1c7c8e-6f4b-4e0f-9b1a-2c3d4e5f6a7b";
    private const string VdiB = "1e2d8d9f-7a5c-4f10-8c2b-3d4e5f6a7b8c";
    private const string VdiC = "2f3e9ea0-8b6d-4021-9d3c-4e5f6a7b8c9d";

    // --- srmetadata.py layout, written out by hand ---

    private static byte[] Sector(string text)
    {
        var b = Encoding.UTF8.GetBytes(text);
        Assert.True(b.Length <= 512, $"test sector too long: {b.Length}");
        return [.. b, .. Enumerable.Repeat((byte)' ', 512 - b.Length)];
    }

    private static string Header(long length) => $"XSSM:{length,-10}:1:2";

    private static byte[] SrSectors(string label = "Local storage", string description = "") =>
    [
        .. Sector($"<?xml version=\"1.0\" ?><uuid>{SrUuid}</uuid><allocation>thick</allocation>"),
        .. Sector($"<name_label>{label}</name_label>"),
        .. Sector($"<name_description>{description}</name_description>"),
    ];

    // LVHDSR.create's vdi_info dict order (Python 3 keeps insertion order), "deleted" appended by addVdiInternal.
    private static string SectorBPython3(string uuid, string deleted = "0", string type = "user") =>
        $"<uuid>{uuid}</uuid><is_a_snapshot>0</is_a_snapshot><snapshot_of></snapshot_of><snapshot_time></snapshot_time>" +
        $"<type>{type}</type><vdi_type>vhd</vdi_type><read_only>0</read_only><managed>1</managed>" +
        $"<metadata_of_pool></metadata_of_pool><deleted>{deleted}</deleted></vdi>";

    // Python 2 dict order is hash order: here a fixed shuffle, as seen in 2.x-era SM volumes.
    private static string SectorBPython2(string uuid, string snapshotOf) =>
        $"<vdi_type>vhd</vdi_type><managed>1</managed><snapshot_time>20240102T03:04:05Z</snapshot_time><uuid>{uuid}</uuid>" +
        $"<deleted>0</deleted><read_only>1</read_only><type>user</type><metadata_of_pool></metadata_of_pool>" +
        $"<snapshot_of>{snapshotOf}</snapshot_of><is_a_snapshot>1</is_a_snapshot></vdi>";

    private static byte[] Record(string label, string description, string sectorB) =>
    [
        .. Sector($"<vdi><name_label>{label}</name_label><name_description>{description}</name_description>"),
        .. Sector(sectorB),
    ];

    private static byte[] Volume(long? length, params byte[][] records)
    {
        var len = length ?? 2048 + 1024 * records.Length;
        return [.. Sector(Header(len)), .. SrSectors(), .. records.SelectMany(r => r)];
    }

    private static byte[] ThreeRecordVolume() => Volume(null,
        Record("web01 disk", "root fs", SectorBPython3(VdiA)),
        Record("web01 disk", "root fs", SectorBPython2(VdiB, VdiA)),
        Record("base copy", "", SectorBPython3(VdiC).Replace("<managed>1</managed>", "<managed>0</managed>")));

    [Fact]
    public void Decodes_header_sr_info_and_records_in_python3_and_python2_element_order()
    {
        var v = XenMgtVolume.Decode(ThreeRecordVolume());

        Assert.Empty(v.Findings);
        Assert.True(v.Header.HasMagic);
        Assert.Equal(2048 + 3 * 1024, v.Header.LengthBytes);
        Assert.Equal((1, 2), (v.Header.Major, v.Header.Minor));
        Assert.Equal(Guid.Parse(SrUuid), v.SrInfo!.Uuid);
        Assert.Equal(("thick", "Local storage", ""), (v.SrInfo.Allocation, v.SrInfo.NameLabel, v.SrInfo.NameDescription));

        Assert.Equal(3, v.Records.Count);
        var a = v.Records[0];
        Assert.Equal((0, 2048L, true, true), (a.SlotIndex, a.OffsetBytes, a.WithinHeaderLength, a.Complete));
        Assert.Equal(Guid.Parse(VdiA), a.Uuid);
        Assert.Equal(("web01 disk", "root fs", "user", "vhd"), (a.NameLabel, a.NameDescription, a.Type, a.VdiType));
        Assert.Equal((false, false, true, false), (a.IsASnapshot, a.ReadOnly, a.Managed, a.IsDeleted));
        Assert.Null(a.SnapshotOf);
        Assert.Equal("", a.SnapshotOfText);
        Assert.Empty(a.UnknownElements);

        var b = v.Records[1];
        Assert.Equal((1, 3072L), (b.SlotIndex, b.OffsetBytes));
        Assert.Equal(Guid.Parse(VdiB), b.Uuid);
        Assert.Equal((true, true, true), (b.IsASnapshot, b.ReadOnly, b.Managed));
        Assert.Equal(Guid.Parse(VdiA), b.SnapshotOf);
        Assert.Equal("20240102T03:04:05Z", b.SnapshotTime);

        Assert.Equal(false, v.Records[2].Managed);
        Assert.Equal(3, v.LiveRecords.Count());
    }

    [Fact]
    public void Encode_writes_the_same_bytes_srmetadata_py_writes()
    {
        var expected = Volume(null,
            Record("web01 disk", "root fs", SectorBPython3(VdiA)),
            Record("R&amp;D &lt;scratch&gt;", "a &gt; b", SectorBPython3(VdiB, type: "suspend")));
        var sr = new XenMgtSrInfo { UuidText = SrUuid, Allocation = "thick", NameLabel = "Local storage", NameDescription = "" };
        XenMgtVdiRecord Leaf(string uuid, string label, string description, string type) => new()
        {
            NameLabel = label, NameDescription = description, UuidText = uuid, IsASnapshotText = "0", SnapshotOfText = "",
            SnapshotTime = "", Type = type, VdiType = "vhd", ReadOnlyText = "0", ManagedText = "1", MetadataOfPool = "",
        };

        var encoded = XenMgtVolume.Encode(sr, [Leaf(VdiA, "web01 disk", "root fs", "user"), Leaf(VdiB, "R&D <scratch>", "a > b", "suspend")]);

        Assert.Equal(Encoding.UTF8.GetString(expected), Encoding.UTF8.GetString(encoded));
        Assert.Equal(expected, encoded);
    }

    [Fact]
    public void Round_trip_keeps_every_field_and_unknown_element()
    {
        var sr = new XenMgtSrInfo { UuidText = SrUuid, Allocation = "thin", NameLabel = "iSCSI <prod> & co", NameDescription = "Ünïcode ☃" };
        var records = new[]
        {
            new XenMgtVdiRecord
            {
                NameLabel = "a & b", NameDescription = "<desc>", UuidText = VdiA, IsASnapshotText = "1", SnapshotOfText = VdiB,
                SnapshotTime = "20240102T03:04:05Z", Type = "user", VdiType = "aio", ReadOnlyText = "1", ManagedText = "1",
                MetadataOfPool = "", DeletedText = "0", UnknownElements = new Dictionary<string, string> { ["offset"] = "2048" }, OffsetBytes = 2048,
            },
            new XenMgtVdiRecord { NameLabel = "gone", NameDescription = "", UuidText = VdiB, DeletedText = "1", SlotIndex = 1, OffsetBytes = 3072 },
        };

        var v = XenMgtVolume.Decode(XenMgtVolume.Encode(sr, records));

        Assert.Empty(v.Findings);
        Assert.Equal(sr.NameLabel, v.SrInfo!.NameLabel);
        Assert.Equal(sr.NameDescription, v.SrInfo.NameDescription);
        Assert.Equal("thin", v.SrInfo.Allocation);
        var r0 = v.Records[0];
        Assert.Equal(records[0] with { UnknownElements = r0.UnknownElements }, r0);
        Assert.Equal("2048", r0.UnknownElements["offset"]);
        Assert.Equal(records[1] with { UnknownElements = v.Records[1].UnknownElements }, v.Records[1]);
        Assert.Single(v.LiveRecords);
    }

    [Fact]
    public void Nul_padding_and_nuls_inside_values_are_dropped_like_sm_does()
    {
        var bytes = ThreeRecordVolume();
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = bytes[i] == (byte)' ' && i % 512 > 100 ? (byte)0 : bytes[i];
        }

        var label = Encoding.UTF8.GetBytes("<vdi><name_label>we\0b01</name_label><off\0set>4096</offset>");
        label.CopyTo(bytes, 2048 + 2048);
        var v = XenMgtVolume.Decode(bytes);

        Assert.Equal(3, v.LiveRecords.Count());
        Assert.Equal("web01", v.Records[2].NameLabel);
        Assert.Equal("4096", v.Records[2].UnknownElements["offset"]);
        Assert.Equal("Local storage", v.SrInfo!.NameLabel);
    }

    [Fact]
    public void Entities_are_unescaped_and_unknown_ones_kept_literally()
    {
        var v = XenMgtVolume.Decode(Volume(null,
            Record("R&amp;D &lt;x&gt; &quot;q&quot; &#65;&#x42; &bogus; &amp", "", SectorBPython3(VdiA))));
        Assert.Equal("R&D <x> \"q\" AB &bogus; &amp", v.Records[0].NameLabel);
    }

    [Fact]
    public void Name_label_and_description_are_cut_to_222_bytes_when_together_over_445()
    {
        var record = new XenMgtVdiRecord { NameLabel = new string('a', 300), NameDescription = new string('é', 200), UuidText = VdiA };
        var bytes = new byte[1024];
        record.Encode(bytes);

        // getVdiInfo: label 300 > 222 -> 222 'a'; description 400 bytes > 222 -> 111 two-byte chars.
        var expectedA = $"<vdi><name_label>{new string('a', 222)}</name_label><name_description>{new string('é', 111)}</name_description>";
        Assert.Equal(Sector(expectedA), bytes[..512]);

        // Under the limit together: nothing is cut even if one part is over 222.
        var fits = new XenMgtVdiRecord { NameLabel = new string('a', 300), NameDescription = "x", UuidText = VdiA };
        fits.Encode(bytes);
        Assert.Contains(new string('a', 300), Encoding.UTF8.GetString(bytes[..512]));
    }

    [Fact]
    public void Entity_cut_in_half_by_sm_truncation_is_kept_as_text()
    {
        // 100 '&' escape to 500 bytes; SM cuts the escaped text to 222 bytes: 44 x "&amp;" + "&a".
        var onDisk = string.Concat(Enumerable.Repeat("&amp;", 44)) + "&a";
        var v = XenMgtVolume.Decode(Volume(null, Record(onDisk, "", SectorBPython3(VdiA))));
        Assert.Equal(new string('&', 44) + "&a", v.Records[0].NameLabel);

        var encoded = new byte[1024];
        new XenMgtVdiRecord { NameLabel = new string('&', 100), NameDescription = "", UuidText = VdiA }.Encode(encoded);
        Assert.Equal(Record(onDisk, "", "")[..512], encoded[..512]);
    }

    [Fact]
    public void Sr_name_sector_is_cut_to_487_bytes_on_a_utf8_boundary()
    {
        var sr = new XenMgtSrInfo { UuidText = SrUuid, Allocation = "thick", NameLabel = new string('€', 200), NameDescription = "" };
        var bytes = XenMgtVolume.Encode(sr, []);
        // buildXMLSector: 512 - 2*len("name_label") - 5 = 487 bytes of value -> 162 three-byte chars.
        Assert.Equal(Sector($"<name_label>{new string('€', 162)}</name_label>"), bytes[1024..1536]);
        Assert.Equal(new string('€', 162), XenMgtVolume.Decode(bytes).SrInfo!.NameLabel);
    }

    [Fact]
    public void Deleted_record_in_the_middle_is_decoded_but_not_live()
    {
        var v = XenMgtVolume.Decode(Volume(null,
            Record("a", "", SectorBPython3(VdiA)),
            Record("dummy vdi for space check", "dummy vdi for space check", SectorBPython3(VdiB, deleted: "1")),
            Record("c", "", SectorBPython3(VdiC))));

        Assert.Empty(v.Findings);
        Assert.True(v.Records[1].IsDeleted);
        Assert.True(v.Records[1].WithinHeaderLength);
        Assert.Equal([Guid.Parse(VdiA), Guid.Parse(VdiC)], v.LiveRecords.Select(r => r.Uuid!.Value));
    }

    [Fact]
    public void Records_beyond_a_shrunk_header_length_are_hints()
    {
        // deleteVdi on the last slot: deleted=1 written, then the header length shrinks by 1024.
        var v = XenMgtVolume.Decode(Volume(2048 + 2 * 1024,
            Record("a", "", SectorBPython3(VdiA)),
            Record("b", "", SectorBPython3(VdiB)),
            Record("old name", "was here", SectorBPython3(VdiC, deleted: "1"))));

        var hint = Assert.Single(v.Records, r => !r.WithinHeaderLength);
        Assert.Equal((2, 4096L, true, "old name"), (hint.SlotIndex, hint.OffsetBytes, hint.IsDeleted, hint.NameLabel));
        var f = Assert.Single(v.Findings);
        Assert.Equal(("XEN_MGT_RECORD_BEYOND_LENGTH", Severity.Info, 4096L), (f.Code, f.Severity, f.OffsetBytes));
        Assert.Equal(2, v.LiveRecords.Count());
    }

    [Fact]
    public void Blank_space_beyond_the_length_is_ignored_and_blank_slot_inside_is_reported()
    {
        var tail = Enumerable.Repeat((byte)' ', 8192).ToArray();
        var v = XenMgtVolume.Decode([.. Volume(null, Record("a", "", SectorBPython3(VdiA))), .. tail]);
        Assert.Empty(v.Findings);
        Assert.Single(v.Records);

        var inside = XenMgtVolume.Decode(Volume(2048 + 2048, Record("a", "", SectorBPython3(VdiA)), new byte[1024]));
        var f = Assert.Single(inside.Findings);
        Assert.Equal(("XEN_MGT_RECORD_UNPARSABLE", 3072L), (f.Code, f.OffsetBytes));
    }

    [Fact]
    public void Header_length_is_what_bytes_to_read_asks_for()
    {
        var bytes = ThreeRecordVolume();
        Assert.Equal(5120, XenMgtVolume.BytesToRead(bytes));
        Assert.Equal(XenMgtVolume.MaxVolumeBytes, XenMgtVolume.BytesToRead(new byte[512]));
        Assert.Equal(XenMgtVolume.MaxVolumeBytes, XenMgtVolume.BytesToRead(Sector(Header(99999999999))));
    }

    [Fact]
    public void Truncated_input_is_an_error_with_offsets()
    {
        var bytes = ThreeRecordVolume()[..3500];
        var v = XenMgtVolume.Decode(bytes);
        var f = Assert.Single(v.Findings, f => f.Code == "XEN_MGT_TRUNCATED");
        Assert.Equal((3500L, "3500", "5120"), (f.OffsetBytes, f.Stored, f.Expected));
        Assert.Equal(Guid.Parse(VdiA), v.Records[0].Uuid);
        Assert.Contains(v.Findings, x => x.Code == "XEN_MGT_RECORD_UNPARSABLE" && x.OffsetBytes == 3072);
        Assert.Throws<CorruptDataException>(() => XenMgtVolume.Parse(bytes));
    }

    [Fact]
    public void Missing_magic_still_yields_records_as_hints()
    {
        var bytes = ThreeRecordVolume();
        bytes.AsSpan(0, 512).Clear();
        var v = XenMgtVolume.Decode(bytes);
        Assert.Contains(v.Findings, f => f.Code == "XEN_MGT_NO_MAGIC" && f.Severity == Severity.Error && f.OffsetBytes == 0);
        Assert.Equal(3, v.Records.Count);
        Assert.All(v.Records, r => Assert.False(r.WithinHeaderLength));
        Assert.Empty(v.LiveRecords);
        var ex = Assert.Throws<CorruptDataException>(() => XenMgtVolume.Parse(bytes));
        Assert.Equal("XEN_MGT_NO_MAGIC", ex.Code);
    }

    [Theory]
    [InlineData("XSSM:99999999999:1:2", "XEN_MGT_BAD_LENGTH")]
    [InlineData("XSSM:-5        :1:2", "XEN_MGT_BAD_LENGTH")]
    [InlineData("XSSM:abc       :1:2", "XEN_MGT_BAD_LENGTH")]
    [InlineData("XSSM:1024      :1:2", "XEN_MGT_BAD_LENGTH")]
    [InlineData("XSSM:99999999999999999999999999999:1:2", "XEN_MGT_BAD_LENGTH")]
    [InlineData("XSSM:3000      :1:2", "XEN_MGT_LENGTH_MISALIGNED")]
    [InlineData("XSSM:2048      :1", "XEN_MGT_BAD_HEADER")]
    [InlineData("XSSM:2048      :2:0", "XEN_MGT_VERSION")]
    [InlineData("XSSN:2048      :1:2", "XEN_MGT_NO_MAGIC")]
    public void Bad_headers_give_findings(string header, string code)
    {
        var v = XenMgtVolume.Decode([.. Sector(header), .. SrSectors(), .. Record("a", "", SectorBPython3(VdiA))]);
        Assert.Contains(v.Findings, f => f.Code == code);
    }

    [Fact]
    public void Unterminated_elements_keep_partial_values_and_are_reported()
    {
        var v = XenMgtVolume.Decode(Volume(null,
            Record("half a name", "", $"<uuid>{VdiA}</uuid><type>user"),
            [.. Sector($"<vdi><name_label>cut off"), .. Sector("")]));

        Assert.Equal(2, v.Records.Count);
        Assert.False(v.Records[0].Complete);
        Assert.Equal(Guid.Parse(VdiA), v.Records[0].Uuid);
        Assert.Equal("user", v.Records[0].Type);
        Assert.Equal("cut off", v.Records[1].NameLabel);
        Assert.Equal(2, v.Findings.Count(f => f.Code == "XEN_MGT_RECORD_UNPARSABLE"));
    }

    [Fact]
    public void Four_mib_of_angle_brackets_is_decoded_quickly()
    {
        var bytes = Enumerable.Repeat((byte)'<', XenMgtVolume.MaxVolumeBytes).ToArray();
        var sw = Stopwatch.StartNew();
        var v = XenMgtVolume.Decode(bytes);
        Assert.True(sw.Elapsed < HangGuard, sw.Elapsed.ToString());
        Assert.Contains(v.Findings, f => f.Code == "XEN_MGT_NO_MAGIC");
        Assert.Empty(v.Records);
    }

    [Fact]
    public void Worst_case_unterminated_tags_in_every_slot_stay_fast()
    {
        var slot = Encoding.ASCII.GetBytes("<vdi>" + string.Concat(Enumerable.Repeat("<a>", 339)));
        var bytes = new byte[XenMgtVolume.MaxVolumeBytes];
        Volume(XenMgtVolume.MaxVolumeBytes).CopyTo(bytes, 0);
        for (var i = 0; i < XenMgtVolume.MaxRecords; i++)
        {
            slot.CopyTo(bytes, 2048 + i * 1024);
        }

        var sw = Stopwatch.StartNew();
        var v = XenMgtVolume.Decode(bytes);
        Assert.True(sw.Elapsed < HangGuard, sw.Elapsed.ToString());
        Assert.Equal(XenMgtVolume.MaxRecords, v.Records.Count);
    }

    [Fact]
    public void Random_bytes_and_random_flips_never_throw()
    {
        var rng = new Random(1234);
        foreach (var size in new[] { 0, 1, 5, 511, 512, 2047, 2048, 5000, 65536 })
        {
            var bytes = new byte[size];
            rng.NextBytes(bytes);
            XenMgtVolume.Decode(bytes);
        }

        var good = ThreeRecordVolume();
        for (var round = 0; round < 300; round++)
        {
            var copy = (byte[])good.Clone();
            for (var k = 0; k < 8; k++)
            {
                copy[rng.Next(copy.Length)] = "<>/&;:0 \0X"u8[rng.Next(10)];
            }

            var v = XenMgtVolume.Decode(copy[..rng.Next(copy.Length + 1)]);
            Assert.NotNull(v.Header);
        }
    }

    [Fact]
    public void Input_over_4_mib_is_capped_with_a_finding()
    {
        var bytes = new byte[XenMgtVolume.MaxVolumeBytes + 4096];
        ThreeRecordVolume().CopyTo(bytes, 0);
        var v = XenMgtVolume.Decode(bytes);
        Assert.Contains(v.Findings, f => f.Code == "XEN_MGT_INPUT_CAPPED");
        Assert.Equal(3, v.LiveRecords.Count());
    }

    [Fact]
    public void Capacity_is_4094_records()
    {
        var sr = new XenMgtSrInfo { UuidText = SrUuid, Allocation = "thick", NameLabel = "x", NameDescription = "" };
        var records = Enumerable.Range(0, XenMgtVolume.MaxRecords)
            .Select(i => new XenMgtVdiRecord { NameLabel = $"disk {i}", NameDescription = "", UuidText = Guid.NewGuid().ToString() }).ToArray();
        var bytes = XenMgtVolume.Encode(sr, records);
        Assert.Equal(XenMgtVolume.MaxVolumeBytes, bytes.Length);
        var v = XenMgtVolume.Decode(bytes);
        Assert.Empty(v.Findings);
        Assert.Equal(4094, v.LiveRecords.Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => XenMgtVolume.Encode(sr, [.. records, records[0]]));
    }

    [Fact]
    public void Encode_refuses_a_second_sector_that_would_spill()
    {
        var r = new XenMgtVdiRecord { UuidText = VdiA, UnknownElements = new Dictionary<string, string> { ["x"] = new string('y', 600) } };
        Assert.Throws<ArgumentException>(() => r.Encode(new byte[1024]));
    }
}
