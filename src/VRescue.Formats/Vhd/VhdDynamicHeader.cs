// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Vhd;

/// <summary>Byte map of <c>struct dd_hdr</c> (blktap include/vhd.h; VHD spec "Dynamic Disk Header Format"). Big-endian.</summary>
public static class VhdDynamicHeaderLayout
{
    public const int Size = 1024;
    public const int Cookie = 0x00, CookieLength = 8;
    public const int DataOffset = 0x08;
    public const int TableOffset = 0x10;
    public const int HeaderVersion = 0x18;
    public const int MaxTableEntries = 0x1C;
    public const int BlockSize = 0x20;
    public const int Checksum = 0x24;
    public const int ParentUuid = 0x28, ParentUuidLength = 16;
    public const int ParentTimestamp = 0x38;
    public const int Reserved1 = 0x3C;
    public const int ParentUnicodeName = 0x40, ParentUnicodeNameLength = 512;
    public const int ParentLocators = 0x240, ParentLocatorCount = 8, ParentLocatorSize = 24;
    public const int Reserved2 = 0x300, Reserved2Length = 256;

    // struct prt_loc, relative to the entry.
    public const int LocatorCode = 0x00;
    public const int LocatorDataSpace = 0x04;
    public const int LocatorDataLength = 0x08;
    public const int LocatorReserved = 0x0C;
    public const int LocatorDataOffset = 0x10;
}

/// <summary>One parent locator entry (<c>struct prt_loc</c>, 24 bytes).</summary>
public sealed record VhdParentLocator(uint Code, uint DataSpace, uint DataLength, uint Reserved, ulong DataOffsetBytes)
{
    public const uint CodeNone = 0;
    /// <summary>"MacX": UTF-8 file:// URL (blktap writes file://./name).</summary>
    public const uint CodeMacX = 0x4D616358;
    /// <summary>"W2ku": UTF-16LE absolute Windows path (blktap writes a relative one).</summary>
    public const uint CodeW2ku = 0x57326B75;
    /// <summary>"W2ru": UTF-16LE relative Windows path.</summary>
    public const uint CodeW2ru = 0x57327275;
    public const uint CodeWi2r = 0x57693272, CodeWi2k = 0x5769326B, CodeMac = 0x4D616320;

    /// <summary>Longest locator text VRescue reads (bounds the allocation).</summary>
    public const int MaxDataLengthBytes = 64 * 1024;

    /// <summary>The code as four characters ("MacX"), or "" for an unused slot.</summary>
    public string CodeText => Code == CodeNone ? "" :
        string.Concat(new[] { Code >> 24, (Code >> 16) & 0xFF, (Code >> 8) & 0xFF, Code & 0xFF }.Select(c => c is >= 0x20 and < 0x7F ? ((char)c).ToString() : $"\\x{c:X2}"));

    public bool IsUsed => Code != CodeNone;

    /// <summary>A platform code libvhd knows (vhd_validate_platform_code).</summary>
    public bool IsKnownCode => Code is CodeNone or CodeMacX or CodeW2ku or CodeW2ru or CodeWi2r or CodeWi2k or CodeMac;

    /// <summary>
    /// Space reserved for the locator in bytes. blktap stores bytes (512) where the spec says sectors; like libvhd
    /// (vhd_parent_locator_size) values below 512 are sectors, multiples of 512 bytes, anything else 0.
    /// </summary>
    public long DataSpaceBytes => DataSpace < 512 ? DataSpace * 512L : DataSpace % 512 == 0 ? DataSpace : 0;

    /// <summary>Decodes locator data: MacX as UTF-8, W2ku/W2ru/Wi2r/Wi2k as UTF-16LE; trailing NULs removed. Null for other codes.</summary>
    public string? DecodeText(ReadOnlySpan<byte> data) => Code switch
    {
        CodeMacX => Encoding.UTF8.GetString(data).TrimEnd('\0'),
        CodeW2ku or CodeW2ru or CodeWi2r or CodeWi2k => Encoding.Unicode.GetString(data[..(data.Length & ~1)]).TrimEnd('\0'),
        _ => null,
    };

    /// <summary>Decodes one 24-byte entry.</summary>
    public static VhdParentLocator Decode(ReadOnlySpan<byte> entry) => new(
        BinaryPrimitives.ReadUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorCode..]),
        BinaryPrimitives.ReadUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataSpace..]),
        BinaryPrimitives.ReadUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataLength..]),
        BinaryPrimitives.ReadUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorReserved..]),
        BinaryPrimitives.ReadUInt64BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataOffset..]));

    /// <summary>Writes the 24-byte entry.</summary>
    public void Encode(Span<byte> entry)
    {
        BinaryPrimitives.WriteUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorCode..], Code);
        BinaryPrimitives.WriteUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataSpace..], DataSpace);
        BinaryPrimitives.WriteUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataLength..], DataLength);
        BinaryPrimitives.WriteUInt32BigEndian(entry[VhdDynamicHeaderLayout.LocatorReserved..], Reserved);
        BinaryPrimitives.WriteUInt64BigEndian(entry[VhdDynamicHeaderLayout.LocatorDataOffset..], DataOffsetBytes);
    }

    /// <summary>Encodes locator text the way blktap writes it: MacX UTF-8, W2ku/W2ru UTF-16LE.</summary>
    public static byte[] EncodeText(uint code, string text) =>
        code == CodeMacX ? Encoding.UTF8.GetBytes(text) : Encoding.Unicode.GetBytes(text);
}

/// <summary>The 1024-byte dynamic disk header ("cxsparse") as stored.</summary>
public sealed record VhdDynamicHeader
{
    public const uint HeaderVersion1 = 0x00010000;

    /// <summary>Block size tapdisk and the VHD spec use (2 MiB); libvhd refuses larger or non-power-of-two sizes.</summary>
    public const uint DefaultBlockSizeBytes = 0x00200000;

    /// <summary>Largest block size VRescue reads (bounds bitmap and block buffers).</summary>
    public const uint MaxBlockSizeBytes = 64u << 20;

    public static ReadOnlySpan<byte> CookieMagic => "cxsparse"u8;

    public string Cookie { get; init; } = "cxsparse";
    public ulong DataOffsetBytes { get; init; } = ulong.MaxValue;
    /// <summary>Absolute byte offset of the BAT.</summary>
    public ulong TableOffsetBytes { get; init; }
    public uint HeaderVersion { get; init; } = HeaderVersion1;
    /// <summary>Entries the BAT has room for (SM: 0x100000 for 2 TiB); only ceil(current size / block size) are used.</summary>
    public uint MaxTableEntries { get; init; }
    public uint BlockSizeBytes { get; init; } = DefaultBlockSizeBytes;
    public uint StoredChecksum { get; init; }
    public uint ComputedChecksum { get; init; }
    /// <summary>Parent's footer uuid; all-zero for dynamic disks or a raw parent.</summary>
    public Guid ParentUuid { get; init; }
    /// <summary>Seconds since 2000-01-01 UTC (mtime of the parent; meaningless for LVs).</summary>
    public uint ParentTimestampSeconds { get; init; }
    public uint Reserved1 { get; init; }
    /// <summary>UTF-16BE parent basename, trailing NULs removed.</summary>
    public string ParentUnicodeName { get; init; } = "";
    public IReadOnlyList<VhdParentLocator> ParentLocators { get; init; } =
        Enumerable.Repeat(new VhdParentLocator(0, 0, 0, 0, 0), VhdDynamicHeaderLayout.ParentLocatorCount).ToArray();
    public ReadOnlyMemory<byte> Raw { get; init; }

    public DateTimeOffset ParentTimestamp => DateTimeOffset.FromUnixTimeSeconds(VhdFooter.VhdEpochUnixSeconds + ParentTimestampSeconds);

    public bool IsChecksumValid => StoredChecksum == ComputedChecksum;

    /// <summary>Sectors of sector bitmap in front of each block: ceil(block sectors / 8 / 512).</summary>
    public long BitmapSizeSectors => ((long)BlockSizeBytes / 512 / 8 + 511) / 512;

    /// <summary>True when the block size is one VRescue can read: a power of two from 512 bytes to <see cref="MaxBlockSizeBytes"/>.</summary>
    public bool IsBlockSizeUsable => BlockSizeBytes >= 512 && BlockSizeBytes <= MaxBlockSizeBytes && (BlockSizeBytes & (BlockSizeBytes - 1)) == 0;

    /// <summary>BAT entries that describe the virtual disk: ceil(current size / block size). Entries past that are ignored.</summary>
    public long UsedTableEntries(ulong currentSizeBytes) =>
        IsBlockSizeUsable ? (long)((currentSizeBytes / BlockSizeBytes) + (currentSizeBytes % BlockSizeBytes == 0 ? 0ul : 1ul)) : 0; // no overflow near 2^64

    /// <summary>Bytes the BAT reserves on disk: MaxTableEntries × 4 rounded up to a sector.</summary>
    public long TableSizeBytes => ((long)MaxTableEntries * 4 + 511) / 512 * 512;

    public static VhdDynamicHeader Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < VhdDynamicHeaderLayout.Size)
        {
            throw new ArgumentException($"a VHD dynamic header needs {VhdDynamicHeaderLayout.Size} bytes", nameof(bytes));
        }

        var b = bytes[..VhdDynamicHeaderLayout.Size];
        var locators = new VhdParentLocator[VhdDynamicHeaderLayout.ParentLocatorCount];
        for (var i = 0; i < locators.Length; i++)
        {
            locators[i] = VhdParentLocator.Decode(b.Slice(VhdDynamicHeaderLayout.ParentLocators + i * VhdDynamicHeaderLayout.ParentLocatorSize, VhdDynamicHeaderLayout.ParentLocatorSize));
        }

        return new VhdDynamicHeader
        {
            Cookie = Encoding.Latin1.GetString(b.Slice(VhdDynamicHeaderLayout.Cookie, VhdDynamicHeaderLayout.CookieLength)),
            DataOffsetBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdDynamicHeaderLayout.DataOffset..]),
            TableOffsetBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdDynamicHeaderLayout.TableOffset..]),
            HeaderVersion = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.HeaderVersion..]),
            MaxTableEntries = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.MaxTableEntries..]),
            BlockSizeBytes = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.BlockSize..]),
            StoredChecksum = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.Checksum..]),
            ComputedChecksum = VhdChecksum.Compute(b, VhdDynamicHeaderLayout.Checksum),
            ParentUuid = new Guid(b.Slice(VhdDynamicHeaderLayout.ParentUuid, VhdDynamicHeaderLayout.ParentUuidLength), bigEndian: true),
            ParentTimestampSeconds = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.ParentTimestamp..]),
            Reserved1 = BinaryPrimitives.ReadUInt32BigEndian(b[VhdDynamicHeaderLayout.Reserved1..]),
            ParentUnicodeName = Encoding.BigEndianUnicode.GetString(b.Slice(VhdDynamicHeaderLayout.ParentUnicodeName, VhdDynamicHeaderLayout.ParentUnicodeNameLength)).TrimEnd('\0'),
            ParentLocators = locators,
            Raw = b.ToArray(),
        };
    }

    /// <summary>Findings with offsets relative to the header start.</summary>
    public IReadOnlyList<Finding> Validate()
    {
        var findings = new List<Finding>();
        if (Cookie != "cxsparse")
        {
            findings.Add(new Finding("VHD_HEADER_COOKIE", Severity.Error, $"dynamic header cookie is \"{VhdFooter.Printable(Cookie)}\", expected \"cxsparse\"",
                VhdDynamicHeaderLayout.Cookie, "cookie", VhdFooter.Printable(Cookie), "cxsparse"));
            return findings;
        }

        if (!IsChecksumValid)
        {
            findings.Add(new Finding("VHD_HEADER_CHECKSUM", Severity.Error, "dynamic header checksum does not match its bytes",
                VhdDynamicHeaderLayout.Checksum, "checksum", Hex.U32(StoredChecksum), Hex.U32(ComputedChecksum)));
        }

        if (HeaderVersion != HeaderVersion1)
        {
            findings.Add(new Finding("VHD_HEADER_VERSION", Severity.Warning, "unexpected dynamic header version",
                VhdDynamicHeaderLayout.HeaderVersion, "hdr_ver", Hex.U32(HeaderVersion), Hex.U32(HeaderVersion1)));
        }

        if (DataOffsetBytes != ulong.MaxValue)
        {
            findings.Add(new Finding("VHD_HEADER_DATA_OFFSET", Severity.Warning, "dynamic header data offset is not all-ones",
                VhdDynamicHeaderLayout.DataOffset, "data_offset", $"0x{DataOffsetBytes:X16}", "0xFFFFFFFFFFFFFFFF"));
        }

        if (!IsBlockSizeUsable)
        {
            findings.Add(new Finding("VHD_BLOCK_SIZE", Severity.Error,
                $"block size must be a power of two from 512 bytes to {MaxBlockSizeBytes} bytes",
                VhdDynamicHeaderLayout.BlockSize, "block_size", BlockSizeBytes.ToString(), DefaultBlockSizeBytes.ToString()));
        }
        else if (BlockSizeBytes > DefaultBlockSizeBytes)
        {
            findings.Add(new Finding("VHD_BLOCK_SIZE_LARGE", Severity.Warning, "block size above 2 MiB: libvhd refuses this VHD",
                VhdDynamicHeaderLayout.BlockSize, "block_size", BlockSizeBytes.ToString(), DefaultBlockSizeBytes.ToString()));
        }

        if (TableOffsetBytes % 512 != 0 || TableOffsetBytes > long.MaxValue / 2)
        {
            findings.Add(new Finding("VHD_TABLE_OFFSET", Severity.Error, "BAT offset is not a sane sector offset",
                VhdDynamicHeaderLayout.TableOffset, "table_offset", TableOffsetBytes.ToString(), "multiple of 512"));
        }

        for (var i = 0; i < ParentLocators.Count; i++)
        {
            if (!ParentLocators[i].IsKnownCode)
            {
                findings.Add(new Finding("VHD_LOCATOR_CODE", Severity.Warning, $"parent locator {i} has an unknown platform code",
                    VhdDynamicHeaderLayout.ParentLocators + i * VhdDynamicHeaderLayout.ParentLocatorSize, $"loc[{i}].code",
                    Hex.U32(ParentLocators[i].Code), "MacX, W2ku, W2ru or 0"));
            }
        }

        return findings;
    }

    public static VhdDynamicHeader Parse(ReadOnlySpan<byte> bytes)
    {
        var header = Decode(bytes);
        CorruptDataException.ThrowIfErrors("VHD", "dynamic header", header.Validate());
        return header;
    }

    /// <summary>Writes the 1024-byte header with a freshly computed checksum; reserved bytes are zero.</summary>
    public void Encode(Span<byte> destination)
    {
        var b = destination[..VhdDynamicHeaderLayout.Size];
        b.Clear();
        Encoding.Latin1.GetBytes(Cookie.PadRight(8, '\0').AsSpan(0, 8), b[VhdDynamicHeaderLayout.Cookie..]);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdDynamicHeaderLayout.DataOffset..], DataOffsetBytes);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdDynamicHeaderLayout.TableOffset..], TableOffsetBytes);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.HeaderVersion..], HeaderVersion);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.MaxTableEntries..], MaxTableEntries);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.BlockSize..], BlockSizeBytes);
        ParentUuid.TryWriteBytes(b.Slice(VhdDynamicHeaderLayout.ParentUuid, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.ParentTimestamp..], ParentTimestampSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.Reserved1..], Reserved1);
        var name = Encoding.BigEndianUnicode.GetBytes(ParentUnicodeName);
        name.AsSpan(0, Math.Min(name.Length, VhdDynamicHeaderLayout.ParentUnicodeNameLength)).CopyTo(b[VhdDynamicHeaderLayout.ParentUnicodeName..]);
        for (var i = 0; i < Math.Min(ParentLocators.Count, VhdDynamicHeaderLayout.ParentLocatorCount); i++)
        {
            ParentLocators[i].Encode(b.Slice(VhdDynamicHeaderLayout.ParentLocators + i * VhdDynamicHeaderLayout.ParentLocatorSize, VhdDynamicHeaderLayout.ParentLocatorSize));
        }

        BinaryPrimitives.WriteUInt32BigEndian(b[VhdDynamicHeaderLayout.Checksum..], VhdChecksum.Compute(b, VhdDynamicHeaderLayout.Checksum));
    }
}
