// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Formats.Xen;

namespace VRescue.Formats.Tests.Xen;

public class XenNamesTests
{
    private const string Sr = "5c7e3a2b-91d4-4f6e-8a0b-1c2d3e4f5a6b";
    private const string Vdi = "0d1c7c8e-6f4b-4e0f-9b1a-2c3d4e5f6a7b";

    [Fact]
    public void Sr_vg_name_round_trips_and_rejects_near_misses()
    {
        Assert.True(XenNames.TryParseSrVgName("VG_XenStorage-" + Sr, out var sr));
        Assert.Equal(Guid.Parse(Sr), sr);
        Assert.Equal("VG_XenStorage-" + Sr, XenNames.VgName(sr));

        Assert.False(XenNames.TryParseSrVgName("XSLocalEXT-" + Sr, out _));
        Assert.False(XenNames.TryParseSrVgName("VG_XenStorage-" + Sr + "x", out _));
        Assert.False(XenNames.TryParseSrVgName("VG_XenStorage-", out _));
        Assert.False(XenNames.TryParseSrVgName(null, out _));
    }

    [Theory]
    [InlineData("VHD-" + Vdi, XenLvKind.VhdVdi)]
    [InlineData("LV-" + Vdi, XenLvKind.RawVdi)]
    [InlineData("QCOW2-" + Vdi, XenLvKind.Qcow2Vdi)]
    [InlineData("VHD-OLD_" + Vdi, XenLvKind.OldLeaf)]
    [InlineData("LV-OLD_" + Vdi, XenLvKind.OldLeaf)]
    [InlineData("jvhd_" + Vdi, XenLvKind.VhdResizeJournal)]
    [InlineData(Vdi + ".cbtlog", XenLvKind.CbtLog)]
    public void Vdi_bearing_names_give_kind_and_uuid(string name, XenLvKind kind)
    {
        var n = XenLvName.Parse(name);
        Assert.Equal(kind, n.Kind);
        Assert.Equal(Guid.Parse(Vdi), n.VdiUuid);
        Assert.Null(n.JournalType);
    }

    [Fact]
    public void Mgt_and_trim_lv_are_recognised()
    {
        Assert.Equal(XenLvKind.Mgt, XenLvName.Parse("MGT").Kind);
        var trim = XenLvName.Parse(Sr + "_trim_lv");
        Assert.Equal(XenLvKind.TrimLv, trim.Kind);
        Assert.Equal(Guid.Parse(Sr), trim.SrUuid);
        Assert.Null(trim.VdiUuid);
    }

    [Theory]
    [InlineData("inflate_" + Vdi + "_8388608", "inflate", "8388608", false)]
    [InlineData("zero_" + Vdi + "_2097152", "zero", "2097152", false)]
    [InlineData("relink_" + Vdi + "_1", "relink", "1", false)]
    [InlineData("coalesce_" + Vdi + "_1", "coalesce", "1", false)]
    [InlineData("clone_" + Vdi + "_1", "clone", "1", true)]
    [InlineData("leaf_" + Vdi + "_1", "leaf", "1", true)]
    public void Journal_names_split_like_journaler_py(string name, string type, string value, bool valueInLv)
    {
        var n = XenLvName.Parse(name);
        Assert.Equal(XenLvKind.Journal, n.Kind);
        Assert.Equal(type, n.JournalType);
        Assert.Equal(Vdi, n.JournalId);
        Assert.Equal(value, n.JournalValue);
        Assert.Equal(Guid.Parse(Vdi), n.VdiUuid);
        Assert.Equal(valueInLv, n.JournalValueStoredInLv);
    }

    [Fact]
    public void Journal_value_may_contain_the_separator()
    {
        // journaler.py self-test: create("modify", "X", "831_3") -> LV "modify_X_831_3".
        var n = XenLvName.Parse("modify_X_831_3");
        Assert.Equal(("modify", "X", "831_3"), (n.JournalType, n.JournalId, n.JournalValue));
        Assert.Null(n.VdiUuid);
    }

    [Theory]
    [InlineData("")]
    [InlineData("VHD-")]
    [InlineData("VHD-not-a-uuid")]
    [InlineData("VHD-" + Vdi + "-")]
    [InlineData("mgt")]
    [InlineData("lvol0")]
    [InlineData("VHD-OLD_x")]
    [InlineData(".cbtlog")]
    public void Other_names_are_unknown(string name) => Assert.Equal(XenLvKind.Unknown, XenLvName.Parse(name).Kind);

    [Fact]
    public void Dm_name_doubles_hyphens_and_decodes_back()
    {
        var vg = "VG_XenStorage-" + Sr;
        var lv = "VHD-" + Vdi;
        var dm = XenNames.DmName(vg, lv);
        Assert.Equal("VG_XenStorage--5c7e3a2b--91d4--4f6e--8a0b--1c2d3e4f5a6b-VHD--0d1c7c8e--6f4b--4e0f--9b1a--2c3d4e5f6a7b", dm);
        Assert.True(XenNames.TryDecodeDmName(dm, out var vg2, out var lv2, out var layer));
        Assert.Equal((vg, lv, ""), (vg2, lv2, layer));

        Assert.True(XenNames.TryDecodeDmName("vg-lv-real", out _, out _, out layer));
        Assert.Equal("real", layer);
        Assert.False(XenNames.TryDecodeDmName("novgsep", out _, out _, out _));
        Assert.False(XenNames.TryDecodeDmName("a-b-c-d", out _, out _, out _));
        Assert.False(XenNames.TryDecodeDmName("-lv", out _, out _, out _));
    }

    [Fact]
    public void Parent_uuid_comes_from_macx_w2ku_and_prt_name_forms()
    {
        var dm = "VG_XenStorage--5c7e3a2b--91d4--4f6e--8a0b--1c2d3e4f5a6b-VHD--0d1c7c8e--6f4b--4e0f--9b1a--2c3d4e5f6a7b";
        foreach (var form in new[] { "file://./" + dm, ".\\" + dm, dm, dm + "\0\0\0", "/dev/mapper/" + dm, "/dev/VG_XenStorage-" + Sr + "/VHD-" + Vdi })
        {
            Assert.True(XenNames.TryParentUuidFromLocator(form, out var uuid, out var kind), form);
            Assert.Equal(Guid.Parse(Vdi), uuid);
            Assert.Equal(XenLvKind.VhdVdi, kind);
        }

        // Raw parent (research 2.7: "Raw parents appear as -LV--<uuid>").
        var raw = "file://./VG_XenStorage--5c7e3a2b--91d4--4f6e--8a0b--1c2d3e4f5a6b-LV--0d1c7c8e--6f4b--4e0f--9b1a--2c3d4e5f6a7b";
        Assert.True(XenNames.TryParentUuidFromLocator(raw, out var rawUuid, out var rawKind));
        Assert.Equal((Guid.Parse(Vdi), XenLvKind.RawVdi), (rawUuid, rawKind));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("dm-12")]
    [InlineData("file://./VG_XenStorage--x-VHD--zzzzzzzz--zzzz--zzzz--zzzz--zzzzzzzzzzzz")]
    [InlineData("VHD-0d1c7c8e-6f4b-4e0f-9b1a-2c3d4e5f6a7")]
    [InlineData("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")]
    public void Garbage_locators_are_rejected(string? text) =>
        Assert.False(XenNames.TryParentUuidFromLocator(text, out _, out _));

    [Fact]
    public void Huge_and_random_locators_do_not_throw()
    {
        Assert.False(XenNames.TryParentUuidFromLocator(new string('-', 1_000_000), out _, out _));
        var rng = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var chars = new char[rng.Next(0, 120)];
            for (var k = 0; k < chars.Length; k++)
            {
                const string alphabet = "-VHDLV0123456789abcdef\0\\/:.";
                chars[k] = alphabet[rng.Next(alphabet.Length)];
            }

            XenNames.TryParentUuidFromLocator(new string(chars), out _, out _);
            XenNames.TryDecodeDmName(new string(chars), out _, out _, out _);
            XenLvName.Parse(new string(chars));
        }
    }

    [Fact]
    public void Clone_journal_content_is_length_prefixed_and_space_padded()
    {
        var value = Vdi + "_" + Guid.Empty.ToString();
        var sector = Encoding.ASCII.GetBytes($"{value.Length} {value}".PadRight(512));
        Assert.True(XenNames.TryDecodeJournalContent(sector, out var decoded));
        Assert.Equal(value, decoded);

        Assert.False(XenNames.TryDecodeJournalContent(new byte[512], out _));
        Assert.False(XenNames.TryDecodeJournalContent(Encoding.ASCII.GetBytes("999 short"), out _));
        Assert.False(XenNames.TryDecodeJournalContent(Encoding.ASCII.GetBytes("vjournal"), out _));
    }
}
