// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;
using VRescue.Formats.Lvm;

namespace VRescue.Formats.Tests.Lvm;

public class LvmLabelTests
{
    // Real PV from research/lvm2-format.md 1.4 (lvm2 2.03.16, 128 MiB, --pvmetadatacopies 2); LVM stored CRC 0x55118A39.
    private const uint RealCrc = 0x55118A39;
    private const string RealUuid = "ppJvqWKZeyljd1y8gZS6qie71qqMd8mp";

    private static LvmLabel RealLabel() => LvmLabel.Create(1, RealUuid, 134217728,
        [new LvmDiskLocation(1048576, 0)], [new LvmDiskLocation(4096, 1044480), new LvmDiskLocation(133169152, 1048576)]);

    private static byte[] RealSector()
    {
        var s = new byte[512];
        RealLabel().Encode(s);
        return s;
    }

    [Fact]
    public void Crc_vectors_match_lvm2()
    {
        Assert.Equal(0x4991CF02u, LvmCrc.Compute("123456789"u8));
        Assert.Equal(0x02C81F10u, LvmCrc.Compute(new byte[492]));
        Assert.Equal(LvmCrc.Compute("123456789"u8), LvmCrc.Continue(LvmCrc.Compute("1234"u8), "56789"u8));
    }

    [Fact]
    public void Create_reproduces_the_crc_lvm_wrote_for_the_same_fields()
    {
        var label = RealLabel();
        Assert.Equal(RealCrc, label.StoredCrc);
        Assert.True(label.IsAcceptedByLvm);
        Assert.Empty(label.Validate());
    }

    [Fact]
    public void Decode_reads_fields_at_the_offsets_pvck_prints()
    {
        var sector = RealSector();
        // pvck --dump headers (2 mdas): MDA2 at 512+120, ext.version at 512+152, ext.flags at 512+156.
        Assert.Equal(133169152ul, BinaryPrimitives.ReadUInt64LittleEndian(sector.AsSpan(120)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(sector.AsSpan(152)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(sector.AsSpan(156)));

        var label = LvmLabel.Decode(sector, 1);
        Assert.Equal("ppJvqW-KZey-ljd1-y8gZ-S6qi-e71q-qMd8mp", label.PvUuidFormatted);
        Assert.Equal(134217728ul, label.DeviceSizeBytes);
        Assert.Equal([new LvmDiskLocation(1048576, 0)], label.DataAreas);
        Assert.Equal(2, label.MetadataAreas.Count);
        Assert.Equal(2u, label.ExtensionVersion);
        Assert.Equal(1u, label.Flags);
        Assert.Equal(RealCrc, label.ComputedCrc);
    }

    [Fact]
    public void TryFind_scans_sectors_0_to_3_and_takes_the_first_valid_label()
    {
        var disk = new byte[2048];
        var label = LvmLabel.Create(3, RealUuid, 1 << 30, [new LvmDiskLocation(1048576, 0)], [new LvmDiskLocation(4096, 1044480)]);
        label.Raw.CopyTo(disk.AsSpan(3 * 512));
        var found = LvmLabel.TryFind(disk);
        Assert.NotNull(found);
        Assert.Equal(3, found.SectorNumber);
        Assert.True(found.IsAcceptedByLvm);
        Assert.Null(LvmLabel.TryFind(new byte[2048]));
    }

    [Fact]
    public void Zeroed_type_from_wipefs_is_reported_as_a_hint_that_restoring_it_fixes_the_crc()
    {
        var disk = new byte[2048];
        RealSector().CopyTo(disk.AsSpan(512));
        disk.AsSpan(512 + 24, 8).Clear(); // what wipefs -a erases: 8 bytes at 0x218
        var findings = new List<Finding>();
        var found = LvmLabel.TryFind(disk, findings);
        Assert.NotNull(found);
        Assert.False(found.IsAcceptedByLvm);
        var hint = Assert.Single(findings, f => f.Code == "LVM_LABEL_TYPE_WIPED");
        Assert.Equal(0x218, hint.OffsetBytes);
        Assert.Contains("makes its CRC valid", hint.Message);
        Assert.Contains(found.Validate(), f => f.Code == "LVM_LABEL_TYPE");
        Assert.Contains(found.Validate(), f => f.Code == "LVM_LABEL_CRC");
    }

    [Fact]
    public void Zeroed_sector_with_labelone_gives_the_crc_pvck_expects()
    {
        var sector = new byte[512];
        "LABELONE"u8.CopyTo(sector);
        var label = LvmLabel.Decode(sector, 0);
        // pvck: "CHECK: label_header.crc expected 0x2c81f10"
        var crc = Assert.Single(label.Validate(), f => f.Code == "LVM_LABEL_CRC");
        Assert.Equal("0x02C81F10", crc.Expected);
        Assert.Contains(label.Validate(), f => f.Code == "LVM_LABEL_OFFSET");
    }

    [Fact]
    public void Label_in_the_wrong_sector_is_rejected_with_offsets_absolute_in_the_pv()
    {
        var sector = RealSector();
        var label = LvmLabel.Decode(sector, 2);
        var f = Assert.Single(label.Validate(), x => x.Code == "LVM_LABEL_SECTOR_MISMATCH");
        Assert.Equal(2 * 512 + 8, f.OffsetBytes);
        Assert.Contains("512 bytes", f.Message);
        Assert.False(label.IsAcceptedByLvm);
    }

    [Fact]
    public void Lists_filling_the_sector_are_bounded_and_reported()
    {
        var sector = new byte[512];
        "LABELONE"u8.CopyTo(sector);
        sector[8] = 1;
        sector[20] = 32;
        "LVM2 001"u8.CopyTo(sector.AsSpan(24));
        Encoding.ASCII.GetBytes(RealUuid).CopyTo(sector, 32);
        for (var pos = 72; pos + 16 <= 512; pos += 16)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(sector.AsSpan(pos), 0x1000);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(16), LvmCrc.Compute(sector.AsSpan(20)));
        var label = LvmLabel.Decode(sector, 1);
        Assert.Equal((512 - 72) / 16, label.DataAreas.Count);
        Assert.Empty(label.MetadataAreas);
        var f = Assert.Single(label.Validate(), x => x.Code == "LVM_LABEL_LIST_UNTERMINATED");
        Assert.Equal(512 + 72, f.OffsetBytes);
    }

    [Fact]
    public void Create_refuses_lists_that_do_not_fit_one_sector()
    {
        var many = Enumerable.Range(1, 30).Select(i => new LvmDiskLocation((ulong)i * 4096, 4096)).ToList();
        Assert.Throws<ArgumentException>(() => LvmLabel.Create(1, RealUuid, 1 << 30, [new LvmDiskLocation(1 << 20, 0)], many));
    }

    [Fact]
    public void Parse_throws_corrupt_data_with_the_offset_and_both_crcs()
    {
        var sector = RealSector();
        sector[100] ^= 0xFF;
        var e = Assert.Throws<CorruptDataException>(() => LvmLabel.Parse(sector, 1));
        Assert.Equal("LVM_LABEL_CRC", e.Code);
        Assert.Equal(512 + 16, e.AbsoluteOffset);
        Assert.Equal("0x55118A39", e.Stored);
    }

    [Fact]
    public void Random_sectors_never_throw()
    {
        var rng = new Random(7);
        var sector = new byte[512];
        for (var i = 0; i < 2000; i++)
        {
            rng.NextBytes(sector);
            "LABELONE"u8.CopyTo(sector);
            var label = LvmLabel.Decode(sector, i % 4);
            Assert.NotEmpty(label.Validate());
        }
    }
}
