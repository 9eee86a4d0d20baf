// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Xen;

/// <summary>What an LV in a XenServer LVM SR is, judged from its name alone.</summary>
public enum XenLvKind
{
    /// <summary><c>VHD-&lt;vdi uuid&gt;</c>: VHD-format VDI (leaf, snapshot or hidden base copy).</summary>
    VhdVdi,

    /// <summary><c>LV-&lt;vdi uuid&gt;</c>: raw VDI (vdi_type aio).</summary>
    RawVdi,

    /// <summary><c>MGT</c>: SR metadata volume (XSSM).</summary>
    Mgt,

    /// <summary><c>&lt;type&gt;_&lt;id&gt;_&lt;value&gt;</c>: SM/GC operation journal (inflate, zero, relink, coalesce, clone, leaf).</summary>
    Journal,

    /// <summary><c>jvhd_&lt;vdi uuid&gt;</c>: vhd-util offline resize journal.</summary>
    VhdResizeJournal,

    /// <summary><c>VHD-OLD_&lt;vdi uuid&gt;</c> (or <c>LV-OLD_</c>): obsolete leaf renamed during leaf-coalesce.</summary>
    OldLeaf,

    /// <summary><c>&lt;vdi uuid&gt;.cbtlog</c>: changed-block-tracking log.</summary>
    CbtLog,

    /// <summary><c>&lt;sr uuid&gt;_trim_lv</c>: temporary LV spanning free space during trim.</summary>
    TrimLv,

    /// <summary><c>QCOW2-&lt;vdi uuid&gt;</c>: XCP-ng QCOW2-on-LVM VDI.</summary>
    Qcow2Vdi,

    /// <summary>Anything else: kept and shown, never guessed at.</summary>
    Unknown,
}

/// <summary>
/// A classified LV name. <see cref="VdiUuid"/> is set when the name carries a VDI uuid (for journals: when the
/// journal id is one). <see cref="JournalType"/> and <see cref="JournalValue"/> are set for <see cref="XenLvKind.Journal"/>.
/// </summary>
public sealed record XenLvName(
    string Name,
    XenLvKind Kind,
    Guid? VdiUuid = null,
    Guid? SrUuid = null,
    string? JournalType = null,
    string? JournalId = null,
    string? JournalValue = null)
{
    // xapi-project/sm libs/sm/lvhdutil.py LV_PREFIX, LVHDSR.py MDVOLUME_NAME, journaler.py SEPARATOR,
    // cleanup.py TMP_RENAME_PREFIX, trim_util.py, constants.py CBTLOG_TAG; xcp-ng/sm drivers/lvmcowutil.py.
    public const string VhdPrefix = "VHD-";
    public const string RawPrefix = "LV-";
    public const string Qcow2Prefix = "QCOW2-";
    public const string MgtName = "MGT";
    public const string OldLeafInfix = "OLD_";
    public const string ResizeJournalPrefix = "jvhd_";
    public const string CbtLogSuffix = ".cbtlog";
    public const string TrimLvSuffix = "_trim_lv";

    /// <summary>Journal types whose value did not fit the LV name and is stored inside the LV (journaler.py).</summary>
    public bool JournalValueStoredInLv => Kind == XenLvKind.Journal && JournalType is "clone" or "leaf";

    /// <summary>Classifies an LV name. Never throws; unrecognised names give <see cref="XenLvKind.Unknown"/>.</summary>
    public static XenLvName Parse(string lvName)
    {
        ArgumentNullException.ThrowIfNull(lvName);
        var n = lvName;
        if (n == MgtName)
        {
            return new(n, XenLvKind.Mgt);
        }

        if (TryUuidAfter(n, VhdPrefix + OldLeafInfix, out var u) || TryUuidAfter(n, RawPrefix + OldLeafInfix, out u))
        {
            return new(n, XenLvKind.OldLeaf, u);
        }

        if (TryUuidAfter(n, VhdPrefix, out u))
        {
            return new(n, XenLvKind.VhdVdi, u);
        }

        if (TryUuidAfter(n, RawPrefix, out u))
        {
            return new(n, XenLvKind.RawVdi, u);
        }

        if (TryUuidAfter(n, Qcow2Prefix, out u))
        {
            return new(n, XenLvKind.Qcow2Vdi, u);
        }

        if (TryUuidAfter(n, ResizeJournalPrefix, out u))
        {
            return new(n, XenLvKind.VhdResizeJournal, u);
        }

        if (n.EndsWith(CbtLogSuffix, StringComparison.Ordinal) && TryUuid(n[..^CbtLogSuffix.Length], out u))
        {
            return new(n, XenLvKind.CbtLog, u);
        }

        if (n.EndsWith(TrimLvSuffix, StringComparison.Ordinal) && TryUuid(n[..^TrimLvSuffix.Length], out u))
        {
            return new(n, XenLvKind.TrimLv, SrUuid: u);
        }

        // journaler.py _getAllEntries: lvName.split("_", 2) -> type, id, val (val may contain '_').
        var parts = n.Split('_', 3);
        if (parts.Length == 3 && parts[0].Length > 0 && parts[1].Length > 0 && parts[0].All(char.IsAsciiLetterLower))
        {
            return new(n, XenLvKind.Journal, TryUuid(parts[1], out u) ? u : null,
                JournalType: parts[0], JournalId: parts[1], JournalValue: parts[2]);
        }

        return new(n, XenLvKind.Unknown);
    }

    private static bool TryUuidAfter(string name, string prefix, out Guid uuid)
    {
        uuid = default;
        return name.StartsWith(prefix, StringComparison.Ordinal) && TryUuid(name[prefix.Length..], out uuid);
    }

    internal static bool TryUuid(string text, out Guid uuid) => Guid.TryParseExact(text, "D", out uuid);
}

/// <summary>
/// VG names and device-mapper names of XenServer LVM SRs (xapi-project/sm libs/sm/lvhdutil.py VG_PREFIX;
/// journaler.py _getLVMapperName; blktap vhd/lib/canonpath.c writes dm names into parent locators).
/// </summary>
public static class XenNames
{
    public const string VgPrefix = "VG_XenStorage-";

    // vhdutil.py _getVHDParentNoCheck: last 40 chars "VHD-<uuid>" or 39 chars "LV-<uuid>".
    private const int VhdTailChars = 40;
    private const int RawTailChars = 39;
    private const int MaxLocatorChars = 4096;
    private const int JournalSectorBytes = 512;

    /// <summary>The SR's VG name: <c>VG_XenStorage-&lt;sr uuid&gt;</c>, uuid lower case.</summary>
    public static string VgName(Guid srUuid) => VgPrefix + srUuid.ToString("D");

    /// <summary>True when <paramref name="vgName"/> is exactly <c>VG_XenStorage-&lt;uuid&gt;</c>.</summary>
    public static bool TryParseSrVgName(string? vgName, out Guid srUuid)
    {
        srUuid = default;
        return vgName is not null && vgName.StartsWith(VgPrefix, StringComparison.Ordinal)
            && XenLvName.TryUuid(vgName[VgPrefix.Length..], out srUuid);
    }

    /// <summary>Device-mapper name: VG and LV with every '-' doubled, joined by one '-' (lvm2 dm_build_dm_name).</summary>
    public static string DmName(string vgName, string lvName) =>
        vgName.Replace("-", "--", StringComparison.Ordinal) + "-" + lvName.Replace("-", "--", StringComparison.Ordinal);

    /// <summary>
    /// Splits a device-mapper name into VG, LV and layer (lvm2 dm_split_lvm_name): a single '-' separates, "--" is
    /// a literal '-'. <paramref name="layer"/> is empty unless there is a third part (e.g. "real", "cow").
    /// </summary>
    public static bool TryDecodeDmName(string? dmName, out string vgName, out string lvName, out string layer)
    {
        vgName = lvName = layer = "";
        if (string.IsNullOrEmpty(dmName))
        {
            return false;
        }

        var parts = new List<string>(3);
        var current = new System.Text.StringBuilder(dmName.Length);
        for (var i = 0; i < dmName.Length; i++)
        {
            if (dmName[i] != '-')
            {
                current.Append(dmName[i]);
            }
            else if (i + 1 < dmName.Length && dmName[i + 1] == '-')
            {
                current.Append('-');
                i++;
            }
            else
            {
                parts.Add(current.ToString());
                current.Clear();
                if (parts.Count == 3)
                {
                    return false;
                }
            }
        }

        parts.Add(current.ToString());
        if (parts.Count < 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            return false;
        }

        vgName = parts[0];
        lvName = parts[1];
        layer = parts.Count == 3 ? parts[2] : "";
        return true;
    }

    /// <summary>
    /// Value of a clone_/leaf_ journal, stored at LV offset 0 as ASCII <c>"&lt;len&gt; &lt;value&gt;"</c> space-padded to
    /// 512 bytes (journaler.py create/_getAllEntries). False when the sector does not have that shape.
    /// </summary>
    public static bool TryDecodeJournalContent(ReadOnlySpan<byte> firstSector, out string value)
    {
        value = "";
        var sector = firstSector[..Math.Min(firstSector.Length, JournalSectorBytes)];
        var space = sector.IndexOf((byte)' ');
        if (space is <= 0 or > 3 || !int.TryParse(sector[..space], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var length))
        {
            return false;
        }

        var rest = sector[(space + 1)..];
        if (length > rest.Length || rest[..length].IndexOfAnyExceptInRange((byte)0x20, (byte)0x7E) >= 0)
        {
            return false;
        }

        value = System.Text.Encoding.ASCII.GetString(rest[..length]);
        return true;
    }

    /// <summary>
    /// Recovers the parent VDI uuid and kind from a VHD parent locator (MacX <c>file://./VG_XenStorage--…-VHD--…</c>,
    /// W2ku/W2ru <c>.\VG_XenStorage--…</c>, already decoded to text) or a header prt_name, the way SM does
    /// (vhdutil.py _getVHDParentNoCheck): un-double hyphens, take the last 40 characters for <c>VHD-&lt;uuid&gt;</c>
    /// or 39 for <c>LV-&lt;uuid&gt;</c>. Trailing NULs and spaces are ignored. False for anything else.
    /// </summary>
    public static bool TryParentUuidFromLocator(string? locatorOrPrtName, out Guid vdiUuid, out XenLvKind kind)
    {
        vdiUuid = default;
        kind = XenLvKind.Unknown;
        if (locatorOrPrtName is null || locatorOrPrtName.Length > MaxLocatorChars)
        {
            return false;
        }

        var text = locatorOrPrtName.TrimEnd('\0', ' ', '\r', '\n', '\t').Replace("--", "-", StringComparison.Ordinal);
        if (text.Length >= VhdTailChars)
        {
            var tail = text[^VhdTailChars..];
            if (tail.StartsWith(XenLvName.VhdPrefix, StringComparison.Ordinal)
                && XenLvName.TryUuid(tail[XenLvName.VhdPrefix.Length..], out vdiUuid))
            {
                kind = XenLvKind.VhdVdi;
                return true;
            }
        }

        if (text.Length >= RawTailChars)
        {
            var tail = text[^RawTailChars..];
            if (tail.StartsWith(XenLvName.RawPrefix, StringComparison.Ordinal)
                && XenLvName.TryUuid(tail[XenLvName.RawPrefix.Length..], out vdiUuid))
            {
                kind = XenLvKind.RawVdi;
                return true;
            }
        }

        vdiUuid = default;
        return false;
    }
}
