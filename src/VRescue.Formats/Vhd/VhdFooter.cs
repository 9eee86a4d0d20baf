// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Vhd;

/// <summary>Byte map of <c>struct hd_ftr</c> (blktap include/vhd.h; VHD spec "Hard Disk Footer Format"). Big-endian.</summary>
public static class VhdFooterLayout
{
    public const int Size = 512;
    /// <summary>Old VHDs wrote a 511-byte footer; libvhd still reads it at end - 511.</summary>
    public const int ShortSize = 511;
    public const int Cookie = 0x00, CookieLength = 8;
    public const int Features = 0x08;
    public const int FileFormatVersion = 0x0C;
    public const int DataOffset = 0x10;
    public const int Timestamp = 0x18;
    public const int CreatorApplication = 0x1C, CreatorApplicationLength = 4;
    public const int CreatorVersion = 0x20;
    public const int CreatorHostOs = 0x24;
    public const int OriginalSize = 0x28;
    public const int CurrentSize = 0x30;
    public const int GeometryCylinders = 0x38;
    public const int GeometryHeads = 0x3A;
    public const int GeometrySectors = 0x3B;
    public const int DiskType = 0x3C;
    public const int Checksum = 0x40;
    public const int Uuid = 0x44, UuidLength = 16;
    public const int SavedState = 0x54;
    /// <summary>blktap extension carved from the spec's reserved area (include/vhd.h hd_ftr.hidden).</summary>
    public const int Hidden = 0x55;
    public const int Reserved = 0x56, ReservedLength = 426;
}

/// <summary>VHD disk type (footer offset 0x3C).</summary>
public enum VhdDiskType : uint
{
    None = 0,
    Fixed = 2,
    Dynamic = 3,
    Differencing = 4,
}

/// <summary>
/// The 512-byte VHD footer as stored. <see cref="Decode"/> keeps invalid values; <see cref="Validate"/> says what
/// is wrong with offsets relative to the footer start.
/// </summary>
public sealed record VhdFooter
{
    /// <summary>Seconds from the Unix epoch to the VHD epoch 2000-01-01T00:00:00Z.</summary>
    public const long VhdEpochUnixSeconds = 946684800;

    /// <summary>File format version 1.0, the only one defined.</summary>
    public const uint FileFormatVersion1 = 0x00010000;

    /// <summary>libvhd refuses creator versions below 1.1 from tapdisk (little-endian bitmaps).</summary>
    public const uint TapVersion1_2 = 0x00010002;

    /// <summary>"conectix": a live footer.</summary>
    public static ReadOnlySpan<byte> CookieMagic => "conectix"u8;

    /// <summary>"v_poison": footer disabled during an interrupted journaled resize (libvhd-journal.c); still parsed.</summary>
    public static ReadOnlySpan<byte> PoisonCookieMagic => "v_poison"u8;

    /// <summary>Byte tapdisk fills the last sector with while a VHD is open read-write (vhd_kill_footer).</summary>
    public const byte KillFillByte = 0xC7;

    /// <summary>Data offset stored by fixed disks (no dynamic header).</summary>
    public const ulong NoDataOffset = ulong.MaxValue;

    public string Cookie { get; init; } = "conectix";
    public uint Features { get; init; } = 2;
    public uint FileFormatVersion { get; init; } = FileFormatVersion1;
    /// <summary>Absolute byte offset of the dynamic header; all-ones for fixed disks.</summary>
    public ulong DataOffsetBytes { get; init; } = NoDataOffset;
    /// <summary>Seconds since 2000-01-01 UTC.</summary>
    public uint TimestampSeconds { get; init; }
    public string CreatorApplication { get; init; } = "tap\0";
    public uint CreatorVersion { get; init; } = 0x00010003;
    public uint CreatorHostOs { get; init; }
    public ulong OriginalSizeBytes { get; init; }
    /// <summary>Virtual disk size as the guest sees it.</summary>
    public ulong CurrentSizeBytes { get; init; }
    public ushort GeometryCylinders { get; init; }
    public byte GeometryHeads { get; init; }
    public byte GeometrySectorsPerTrack { get; init; }
    public VhdDiskType DiskType { get; init; }
    public uint StoredChecksum { get; init; }
    /// <summary>Checksum computed over the raw bytes at decode time (0 for footers built in code).</summary>
    public uint ComputedChecksum { get; init; }
    /// <summary>Footer uuid (random per VHD, not the XAPI VDI uuid); the child's header names its parent by it.</summary>
    public Guid Uuid { get; init; }
    public byte SavedState { get; init; }
    /// <summary>blktap hidden flag: 1 for base copies and coalesce garbage.</summary>
    public byte Hidden { get; init; }
    /// <summary>Raw bytes as read (512; a short footer is zero-padded). Empty for footers built in code.</summary>
    public ReadOnlyMemory<byte> Raw { get; init; }

    /// <summary>When the image was created (footer time stamp).</summary>
    public DateTimeOffset Timestamp => DateTimeOffset.FromUnixTimeSeconds(VhdEpochUnixSeconds + TimestampSeconds);

    public bool IsPoisoned => Cookie == "v_poison";

    public bool HasValidCookie => Cookie is "conectix" or "v_poison";

    public bool IsChecksumValid => StoredChecksum == ComputedChecksum;

    /// <summary>All raw bytes are 0xC7: tapdisk had the VHD open read-write (footer killed).</summary>
    public bool IsKilled => !Raw.IsEmpty && !Raw.Span.ContainsAnyExcept(KillFillByte);

    /// <summary>All raw bytes are zero (for example a freshly inflated LV end).</summary>
    public bool IsZeroed => !Raw.IsEmpty && !Raw.Span.ContainsAnyExcept((byte)0);

    /// <summary>Creator application "tap" (blktap tapdisk / vhd-util).</summary>
    public bool IsTapCreator => CreatorApplication.TrimEnd('\0') == "tap";

    /// <summary>Dynamic or differencing: has a dynamic header and BAT.</summary>
    public bool HasDynamicHeader => DiskType is VhdDiskType.Dynamic or VhdDiskType.Differencing;

    /// <summary>This footer with original and current size <paramref name="sizeBytes"/> and the CHS geometry for it (VHD spec appendix).</summary>
    public VhdFooter WithSize(ulong sizeBytes)
    {
        var g = VhdGeometry.FromSize(sizeBytes);
        return this with
        {
            OriginalSizeBytes = sizeBytes, CurrentSizeBytes = sizeBytes,
            GeometryCylinders = g.Cylinders, GeometryHeads = g.Heads, GeometrySectorsPerTrack = g.SectorsPerTrack,
        };
    }

    /// <summary>Decodes 512 bytes (or a 511-byte short footer, zero-padded). Keeps invalid values.</summary>
    public static VhdFooter Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < VhdFooterLayout.ShortSize)
        {
            throw new ArgumentException($"a VHD footer needs at least {VhdFooterLayout.ShortSize} bytes", nameof(bytes));
        }

        var raw = new byte[VhdFooterLayout.Size];
        bytes[..Math.Min(bytes.Length, VhdFooterLayout.Size)].CopyTo(raw);
        ReadOnlySpan<byte> b = raw;
        return new VhdFooter
        {
            Cookie = Encoding.Latin1.GetString(b.Slice(VhdFooterLayout.Cookie, VhdFooterLayout.CookieLength)),
            Features = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.Features..]),
            FileFormatVersion = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.FileFormatVersion..]),
            DataOffsetBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdFooterLayout.DataOffset..]),
            TimestampSeconds = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.Timestamp..]),
            CreatorApplication = Encoding.Latin1.GetString(b.Slice(VhdFooterLayout.CreatorApplication, VhdFooterLayout.CreatorApplicationLength)),
            CreatorVersion = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.CreatorVersion..]),
            CreatorHostOs = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.CreatorHostOs..]),
            OriginalSizeBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdFooterLayout.OriginalSize..]),
            CurrentSizeBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdFooterLayout.CurrentSize..]),
            GeometryCylinders = BinaryPrimitives.ReadUInt16BigEndian(b[VhdFooterLayout.GeometryCylinders..]),
            GeometryHeads = b[VhdFooterLayout.GeometryHeads],
            GeometrySectorsPerTrack = b[VhdFooterLayout.GeometrySectors],
            DiskType = (VhdDiskType)BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.DiskType..]),
            StoredChecksum = BinaryPrimitives.ReadUInt32BigEndian(b[VhdFooterLayout.Checksum..]),
            ComputedChecksum = VhdChecksum.Compute(b, VhdFooterLayout.Checksum),
            Uuid = new Guid(b.Slice(VhdFooterLayout.Uuid, VhdFooterLayout.UuidLength), bigEndian: true),
            SavedState = b[VhdFooterLayout.SavedState],
            Hidden = b[VhdFooterLayout.Hidden],
            Raw = raw,
        };
    }

    /// <summary>Findings with offsets relative to the footer start. Empty for a footer libvhd would accept.</summary>
    public IReadOnlyList<Finding> Validate()
    {
        var findings = new List<Finding>();
        if (IsKilled)
        {
            findings.Add(new Finding("VHD_FOOTER_KILLED", Severity.Error,
                "footer sector is filled with 0xC7: tapdisk had the VHD open read-write (vhd_kill_footer); use the copy at offset 0", 0));
            return findings;
        }

        if (IsZeroed)
        {
            findings.Add(new Finding("VHD_FOOTER_ZEROED", Severity.Error, "footer sector is all zeros", 0));
            return findings;
        }

        if (!HasValidCookie)
        {
            findings.Add(new Finding("VHD_FOOTER_COOKIE", Severity.Error, $"footer cookie is \"{Printable(Cookie)}\", expected \"conectix\"",
                VhdFooterLayout.Cookie, "cookie", Printable(Cookie), "conectix"));
            return findings;
        }

        if (IsPoisoned)
        {
            findings.Add(new Finding("VHD_FOOTER_POISONED", Severity.Warning,
                "footer cookie is \"v_poison\": a journaled resize was interrupted (libvhd-journal); the VHD was disabled, data is still there",
                VhdFooterLayout.Cookie, "cookie", "v_poison", "conectix"));
        }

        if (!IsChecksumValid)
        {
            if (IsHiddenChecksumQuirk())
            {
                findings.Add(new Finding("VHD_FOOTER_CHECKSUM_HIDDEN", Severity.Warning,
                    "footer checksum matches only with hidden=0 (early td-util did not re-checksum; libvhd accepts it)",
                    VhdFooterLayout.Checksum, "checksum", Hex.U32(StoredChecksum), Hex.U32(ComputedChecksum)));
            }
            else
            {
                findings.Add(new Finding("VHD_FOOTER_CHECKSUM", Severity.Error, "footer checksum does not match its bytes",
                    VhdFooterLayout.Checksum, "checksum", Hex.U32(StoredChecksum), Hex.U32(ComputedChecksum)));
            }
        }

        if (FileFormatVersion != FileFormatVersion1)
        {
            findings.Add(new Finding("VHD_FOOTER_VERSION", Severity.Warning, "unexpected file format version",
                VhdFooterLayout.FileFormatVersion, "file_format_version", Hex.U32(FileFormatVersion), Hex.U32(FileFormatVersion1)));
        }

        if (DiskType is not (VhdDiskType.Fixed or VhdDiskType.Dynamic or VhdDiskType.Differencing))
        {
            findings.Add(new Finding("VHD_DISK_TYPE", Severity.Error, "unknown disk type",
                VhdFooterLayout.DiskType, "type", ((uint)DiskType).ToString(), "2, 3 or 4"));
        }

        if (CurrentSizeBytes % 512 != 0 || CurrentSizeBytes > MaxCurrentSizeBytes)
        {
            findings.Add(new Finding("VHD_CURRENT_SIZE", Severity.Error,
                $"current (virtual) size is not a multiple of 512 or exceeds {MaxCurrentSizeBytes} bytes",
                VhdFooterLayout.CurrentSize, "curr_size", CurrentSizeBytes.ToString(), $"multiple of 512, <= {MaxCurrentSizeBytes}"));
        }

        if (HasDynamicHeader && (DataOffsetBytes % 512 != 0 || DataOffsetBytes > long.MaxValue / 2))
        {
            findings.Add(new Finding("VHD_FOOTER_DATA_OFFSET", Severity.Error, "dynamic header offset is not a sane sector offset",
                VhdFooterLayout.DataOffset, "data_offset", DataOffsetBytes.ToString(), "512"));
        }

        if (IsTapCreator && CreatorVersion < 0x00010001)
        {
            findings.Add(new Finding("VHD_CREATOR_VERSION", Severity.Warning,
                "tap creator version 0.1 used little-endian bitmaps; libvhd refuses it",
                VhdFooterLayout.CreatorVersion, "crtr_ver", Hex.U32(CreatorVersion), ">= 0x00010001"));
        }

        return findings;
    }

    /// <summary>Decode + fail on error findings.</summary>
    public static VhdFooter Parse(ReadOnlySpan<byte> bytes)
    {
        var footer = Decode(bytes);
        CorruptDataException.ThrowIfErrors("VHD", "footer", footer.Validate());
        return footer;
    }

    /// <summary>Writes the 512-byte footer with a freshly computed checksum; reserved bytes are zero.</summary>
    public void Encode(Span<byte> destination)
    {
        var b = destination[..VhdFooterLayout.Size];
        b.Clear();
        Encoding.Latin1.GetBytes(Cookie.PadRight(VhdFooterLayout.CookieLength, '\0').AsSpan(0, VhdFooterLayout.CookieLength), b[VhdFooterLayout.Cookie..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.Features..], Features);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.FileFormatVersion..], FileFormatVersion);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdFooterLayout.DataOffset..], DataOffsetBytes);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.Timestamp..], TimestampSeconds);
        Encoding.Latin1.GetBytes(CreatorApplication.PadRight(4, '\0').AsSpan(0, 4), b[VhdFooterLayout.CreatorApplication..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.CreatorVersion..], CreatorVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.CreatorHostOs..], CreatorHostOs);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdFooterLayout.OriginalSize..], OriginalSizeBytes);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdFooterLayout.CurrentSize..], CurrentSizeBytes);
        BinaryPrimitives.WriteUInt16BigEndian(b[VhdFooterLayout.GeometryCylinders..], GeometryCylinders);
        b[VhdFooterLayout.GeometryHeads] = GeometryHeads;
        b[VhdFooterLayout.GeometrySectors] = GeometrySectorsPerTrack;
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.DiskType..], (uint)DiskType);
        Uuid.TryWriteBytes(b.Slice(VhdFooterLayout.Uuid, VhdFooterLayout.UuidLength), bigEndian: true, out _);
        b[VhdFooterLayout.SavedState] = SavedState;
        b[VhdFooterLayout.Hidden] = Hidden;
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdFooterLayout.Checksum..], VhdChecksum.Compute(b, VhdFooterLayout.Checksum));
    }

    /// <summary>Largest virtual size VRescue accepts (64 TiB; blktap's MAX_VHD_SIZE is 2040 GiB). Bounds every allocation sized by it.</summary>
    public const ulong MaxCurrentSizeBytes = 64UL << 40;

    private bool IsHiddenChecksumQuirk()
    {
        if (Raw.IsEmpty || Hidden == 0 || !IsTapCreator)
        {
            return false;
        }

        var copy = Raw.ToArray();
        copy[VhdFooterLayout.Hidden] = 0;
        return VhdChecksum.Compute(copy, VhdFooterLayout.Checksum) == StoredChecksum;
    }

    internal static string Printable(string s) =>
        string.Concat(s.Select(c => c is >= ' ' and <= '~' ? c.ToString() : $"\\x{(int)c:X2}"));
}
