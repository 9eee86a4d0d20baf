// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Vhd;

/// <summary>Byte map of <c>struct dd_batmap_hdr</c> (blktap include/vhd.h). Big-endian.</summary>
public static class VhdBatmapHeaderLayout
{
    public const int Size = 512;
    public const int Cookie = 0x00, CookieLength = 8;
    public const int BatmapOffset = 0x08;
    public const int BatmapSize = 0x10;
    public const int BatmapVersion = 0x14;
    public const int Checksum = 0x18;
    public const int Marker = 0x1C;
    public const int KeyHashCookie = 0x1D;
    public const int KeyHashNonce = 0x1E, KeyHashNonceLength = 32;
    public const int KeyHashSha256 = 0x3E, KeyHashSha256Length = 32;
    public const int Reserved = 0x5E;
}

/// <summary>
/// blktap batmap header ("tdbatmap"): one bit per block, MSB-first, set when the block is completely full so readers
/// may skip its sector bitmap. Sits at table offset + sector-padded BAT size.
/// </summary>
public sealed record VhdBatmapHeader
{
    public const uint Version1_1 = 0x00010001;
    public const uint Version1_2 = 0x00010002;
    public const uint CurrentVersion = Version1_2;

    public static ReadOnlySpan<byte> CookieMagic => "tdbatmap"u8;

    public string Cookie { get; init; } = "tdbatmap";
    /// <summary>Absolute byte offset of the bit map.</summary>
    public ulong BatmapOffsetBytes { get; init; }
    public uint BatmapSizeSectors { get; init; }
    public uint Version { get; init; } = CurrentVersion;
    public uint StoredChecksum { get; init; }
    /// <summary>Generic flag (vhd-util set -f marker).</summary>
    public byte Marker { get; init; }
    /// <summary>1 when the VHD data is encrypted (keyhash present).</summary>
    public byte KeyHashCookie { get; init; }
    public ReadOnlyMemory<byte> KeyHashNonce { get; init; } = new byte[VhdBatmapHeaderLayout.KeyHashNonceLength];
    public ReadOnlyMemory<byte> KeyHashSha256 { get; init; } = new byte[VhdBatmapHeaderLayout.KeyHashSha256Length];
    public ReadOnlyMemory<byte> Raw { get; init; }

    public bool HasValidCookie => Cookie == "tdbatmap";

    public bool IsEncrypted => KeyHashCookie == 1;

    public long BatmapSizeBytes => BatmapSizeSectors * 512L;

    /// <summary>Where the batmap header sits: BAT offset + MaxTableEntries × 4 padded to a sector (libvhd vhd_batmap_header_offset).</summary>
    public static long HeaderOffsetBytes(VhdDynamicHeader header) => checked((long)header.TableOffsetBytes + header.TableSizeBytes);

    /// <summary>
    /// Bytes the batmap checksum covers: ceil((current size &gt;&gt; 24) / 512) × 512, at least one sector
    /// (blktap libvhd.c vhd_checksum_batmap; research 2.3). Not the whole reserved map.
    /// </summary>
    public static int ChecksumLengthBytes(ulong currentSizeBytes)
    {
        var bytes = currentSizeBytes >> 24;
        var sectors = Math.Max(1UL, (bytes + 511) / 512);
        return checked((int)(sectors * 512));
    }

    /// <summary>Checksum over the first <see cref="ChecksumLengthBytes"/> of <paramref name="map"/> (signed bytes for version 1.1).</summary>
    public uint ComputeChecksum(ReadOnlySpan<byte> map, ulong currentSizeBytes) =>
        VhdChecksum.ComputeOver(map[..Math.Min(map.Length, ChecksumLengthBytes(currentSizeBytes))], Version == Version1_1);

    public static VhdBatmapHeader Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < VhdBatmapHeaderLayout.Size)
        {
            throw new ArgumentException($"a batmap header needs {VhdBatmapHeaderLayout.Size} bytes", nameof(bytes));
        }

        var b = bytes[..VhdBatmapHeaderLayout.Size];
        return new VhdBatmapHeader
        {
            Cookie = Encoding.Latin1.GetString(b.Slice(VhdBatmapHeaderLayout.Cookie, VhdBatmapHeaderLayout.CookieLength)),
            BatmapOffsetBytes = BinaryPrimitives.ReadUInt64BigEndian(b[VhdBatmapHeaderLayout.BatmapOffset..]),
            BatmapSizeSectors = BinaryPrimitives.ReadUInt32BigEndian(b[VhdBatmapHeaderLayout.BatmapSize..]),
            Version = BinaryPrimitives.ReadUInt32BigEndian(b[VhdBatmapHeaderLayout.BatmapVersion..]),
            StoredChecksum = BinaryPrimitives.ReadUInt32BigEndian(b[VhdBatmapHeaderLayout.Checksum..]),
            Marker = b[VhdBatmapHeaderLayout.Marker],
            KeyHashCookie = b[VhdBatmapHeaderLayout.KeyHashCookie],
            KeyHashNonce = b.Slice(VhdBatmapHeaderLayout.KeyHashNonce, VhdBatmapHeaderLayout.KeyHashNonceLength).ToArray(),
            KeyHashSha256 = b.Slice(VhdBatmapHeaderLayout.KeyHashSha256, VhdBatmapHeaderLayout.KeyHashSha256Length).ToArray(),
            Raw = b.ToArray(),
        };
    }

    /// <summary>Header findings, offsets relative to the batmap header. Batmap problems are warnings: readers fall back to sector bitmaps.</summary>
    public IReadOnlyList<Finding> Validate()
    {
        var findings = new List<Finding>();
        if (!HasValidCookie)
        {
            findings.Add(new Finding("VHD_BATMAP_COOKIE", Severity.Warning, "batmap header cookie is not \"tdbatmap\"; batmap ignored",
                VhdBatmapHeaderLayout.Cookie, "cookie", VhdFooter.Printable(Cookie), "tdbatmap"));
            return findings;
        }

        if (Version > CurrentVersion)
        {
            findings.Add(new Finding("VHD_BATMAP_VERSION", Severity.Warning, "batmap version is newer than 1.2; batmap ignored",
                VhdBatmapHeaderLayout.BatmapVersion, "batmap_version", Hex.U32(Version), Hex.U32(CurrentVersion)));
        }

        if (BatmapSizeSectors == 0 || BatmapOffsetBytes == 0 || BatmapOffsetBytes % 512 != 0 || BatmapOffsetBytes > long.MaxValue / 2)
        {
            findings.Add(new Finding("VHD_BATMAP_RANGE", Severity.Warning, "batmap offset or size is invalid; batmap ignored",
                VhdBatmapHeaderLayout.BatmapOffset, "batmap_offset", $"{BatmapOffsetBytes}+{BatmapSizeSectors} sectors", "sector-aligned, non-zero"));
        }

        if (IsEncrypted)
        {
            findings.Add(new Finding("VHD_ENCRYPTED", Severity.Warning,
                "keyhash cookie is set: block data is encrypted (blktap AES-XTS); content is unreadable without the host key",
                VhdBatmapHeaderLayout.KeyHashCookie, "keyhash.cookie", "1", "0"));
        }

        return findings;
    }

    /// <summary>Checks the map bytes against the stored checksum; offsets relative to the batmap header.</summary>
    public IReadOnlyList<Finding> ValidateMap(ReadOnlySpan<byte> map, ulong currentSizeBytes)
    {
        var findings = new List<Finding>();
        var computed = ComputeChecksum(map, currentSizeBytes);
        if (computed != StoredChecksum)
        {
            findings.Add(new Finding("VHD_BATMAP_CHECKSUM", Severity.Warning, "batmap checksum does not match the map; batmap ignored, sector bitmaps used",
                VhdBatmapHeaderLayout.Checksum, "checksum", Hex.U32(StoredChecksum), Hex.U32(computed)));
        }

        return findings;
    }

    /// <summary>Writes the 512-byte header; the checksum is computed over <paramref name="map"/>.</summary>
    public void Encode(Span<byte> destination, ReadOnlySpan<byte> map, ulong currentSizeBytes)
    {
        var b = destination[..VhdBatmapHeaderLayout.Size];
        b.Clear();
        Encoding.Latin1.GetBytes(Cookie.PadRight(8, '\0').AsSpan(0, 8), b[VhdBatmapHeaderLayout.Cookie..]);
        BinaryPrimitives.WriteUInt64BigEndian(b[VhdBatmapHeaderLayout.BatmapOffset..], BatmapOffsetBytes);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdBatmapHeaderLayout.BatmapSize..], BatmapSizeSectors);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdBatmapHeaderLayout.BatmapVersion..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(b[VhdBatmapHeaderLayout.Checksum..], ComputeChecksum(map, currentSizeBytes));
        b[VhdBatmapHeaderLayout.Marker] = Marker;
        b[VhdBatmapHeaderLayout.KeyHashCookie] = KeyHashCookie;
        KeyHashNonce.Span[..Math.Min(KeyHashNonce.Length, 32)].CopyTo(b[VhdBatmapHeaderLayout.KeyHashNonce..]);
        KeyHashSha256.Span[..Math.Min(KeyHashSha256.Length, 32)].CopyTo(b[VhdBatmapHeaderLayout.KeyHashSha256..]);
    }
}
