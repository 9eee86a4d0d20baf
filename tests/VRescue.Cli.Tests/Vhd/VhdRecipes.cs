// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace VRescue.Cli.Tests.Vhd;

/// <summary>Which guest blocks a recipe damages: chosen per image by the test from facts about that image.</summary>
/// <param name="Primary">The block whose BAT entry is damaged.</param>
/// <param name="Secondary">A second allocated block (overlap target, second lost entry).</param>
/// <param name="Partial">An allocated block whose sector bitmap is not full (batmap bit wrongly set); null if none.</param>
/// <param name="Full">An allocated block with a full bitmap and its batmap bit set (bit wrongly cleared); null if none.</param>
internal sealed record VhdVictims(long Primary, long Secondary, long? Partial, long? Full);

/// <summary>
/// The damage classes `vhd repair` covers, applied in place to a copy of a VHD in XenServer's layout (footer copy at
/// 0, header at 0x200; BAT, batmap header and locators found through the header, so any SM-layout VHD works).
/// Offsets: VHD spec (footer checksum at 64, header checksum at 36, table offset at 16, max entries at 28, locator
/// entries at 576, 24 bytes each); blktap libvhd vhd_batmap_header (cookie, offset at 8, size at 16, checksum at 24).
/// </summary>
internal static class VhdRecipes
{
    /// <summary>Recipes that only touch VHD metadata shared by every dynamic disk.</summary>
    public static readonly string[] Dynamic =
    [
        "footer-killed", "footer-zeroed", "footer-copy-zeroed", "both-footers-lost", "footer-checksum-bad",
        "header-zeroed", "header-checksum-bad", "footer-killed-and-header-zeroed",
        "bat-entry-zeroed", "bat-entry-into-metadata", "bat-entry-unallocated", "bat-entries-overlap", "two-bat-entries-zeroed",
        "batmap-checksum-bad", "batmap-bit-on-partial-block", "batmap-bit-clear-on-full-block", "truncated",
    ];

    /// <summary>Recipes on the leaf of a differencing chain (parents beside it).</summary>
    public static readonly string[] Differencing = ["parent-locator-text-wiped", "parent-locator-out-of-range", "parent-missing"];

    /// <summary>Bytes cut off the end by "truncated": the footer and the last 512-byte sector before it.</summary>
    public const int TruncatedBytes = 1024;

    public static void Apply(string recipe, string path, VhdVictims v)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var length = f.Length;
        var tableOffset = (long)BinaryPrimitives.ReadUInt64BigEndian(Read(f, 512 + 16, 8));
        var maxEntries = BinaryPrimitives.ReadUInt32BigEndian(Read(f, 512 + 28, 4));
        // tapdisk's batmap header follows the BAT, rounded to a sector (libvhd vhd_batmap_header_offset).
        var batmapHeader = (tableOffset + maxEntries * 4L + 511) / 512 * 512;
        switch (recipe)
        {
            case "footer-killed":
                Fill(f, length - 512, 512, 0xC7);
                break;
            case "footer-zeroed":
                Fill(f, length - 512, 512, 0);
                break;
            case "footer-copy-zeroed":
                Fill(f, 0, 512, 0);
                break;
            case "both-footers-lost":
                Fill(f, length - 512, 512, 0xC7);
                Fill(f, 0, 512, 0);
                break;
            case "footer-checksum-bad":
                Flip(f, 64);
                Flip(f, length - 512 + 64);
                break;
            case "header-zeroed":
                Fill(f, 512, 1024, 0);
                break;
            case "header-checksum-bad":
                Flip(f, 512 + 36);
                break;
            case "footer-killed-and-header-zeroed":
                Fill(f, length - 512, 512, 0xC7);
                Fill(f, 512, 1024, 0);
                break;
            case "bat-entry-zeroed":
                SetEntry(f, tableOffset, v.Primary, 0);
                break;
            case "bat-entry-into-metadata":
                SetEntry(f, tableOffset, v.Primary, 1);
                break;
            case "bat-entry-unallocated":
                SetEntry(f, tableOffset, v.Primary, 0xFFFFFFFF);
                break;
            case "bat-entries-overlap":
                SetEntry(f, tableOffset, v.Primary, Entry(f, tableOffset, v.Secondary));
                break;
            case "two-bat-entries-zeroed":
                SetEntry(f, tableOffset, v.Primary, 0);
                SetEntry(f, tableOffset, v.Secondary, 0);
                break;
            case "batmap-checksum-bad":
                Flip(f, batmapHeader + 24);
                break;
            case "batmap-bit-on-partial-block":
                SetBatmapBit(f, batmapHeader, v.Partial ?? throw new InvalidOperationException("no partial block"), true);
                break;
            case "batmap-bit-clear-on-full-block":
                SetBatmapBit(f, batmapHeader, v.Full ?? throw new InvalidOperationException("no full block"), false);
                break;
            case "truncated":
                f.SetLength(length - TruncatedBytes);
                break;
            case "parent-locator-text-wiped":
                foreach (var (offset, len) in Locators(f))
                {
                    Fill(f, offset, len, 0);
                }

                break;
            case "parent-locator-out-of-range":
                for (var i = 0; i < 8; i++)
                {
                    if (BinaryPrimitives.ReadUInt32BigEndian(Read(f, 512 + 576 + 24 * i, 4)) != 0)
                    {
                        var at = new byte[8];
                        BinaryPrimitives.WriteUInt64BigEndian(at, 1UL << 40);
                        Write(f, 512 + 576 + 24 * i + 16, at);
                    }
                }

                FixHeaderChecksum(f);
                break;
            case "parent-missing":
                File.Delete(Path.Combine(Path.GetDirectoryName(path)!, "chain-mid.vhd"));
                break;
            default:
                throw new ArgumentException("unknown recipe " + recipe, nameof(recipe));
        }
    }

    public static uint Entry(FileStream f, long tableOffset, long block) => BinaryPrimitives.ReadUInt32BigEndian(Read(f, tableOffset + block * 4, 4));

    private static void SetEntry(FileStream f, long tableOffset, long block, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Write(f, tableOffset + block * 4, b);
    }

    /// <summary>Sets or clears one batmap bit (MSB first, libvhd) and recomputes the checksum as tapdisk does (vhd_checksum_batmap).</summary>
    private static void SetBatmapBit(FileStream f, long header, long block, bool set)
    {
        var mapAt = (long)BinaryPrimitives.ReadUInt64BigEndian(Read(f, header + 8, 8));
        var sectors = BinaryPrimitives.ReadUInt32BigEndian(Read(f, header + 16, 4));
        var map = Read(f, mapAt, (int)sectors * 512);
        var mask = (byte)(0x80 >> (int)(block % 8));
        map[block / 8] = set ? (byte)(map[block / 8] | mask) : (byte)(map[block / 8] & ~mask);
        Write(f, mapAt, map);
        uint sum = 0;
        foreach (var b in map)
        {
            sum += b;
        }

        var c = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, ~sum);
        Write(f, header + 24, c);
    }

    private static List<(long Offset, int Length)> Locators(FileStream f)
    {
        var list = new List<(long, int)>();
        for (var i = 0; i < 8; i++)
        {
            var e = Read(f, 512 + 576 + 24 * i, 24);
            if (BinaryPrimitives.ReadUInt32BigEndian(e) != 0)
            {
                list.Add(((long)BinaryPrimitives.ReadUInt64BigEndian(e.AsSpan(16)), (int)BinaryPrimitives.ReadUInt32BigEndian(e.AsSpan(8))));
            }
        }

        return list;
    }

    private static void FixHeaderChecksum(FileStream f)
    {
        var h = Read(f, 512, 1024);
        h.AsSpan(36, 4).Clear();
        uint sum = 0;
        foreach (var b in h)
        {
            sum += b;
        }

        var c = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(c, ~sum);
        Write(f, 512 + 36, c);
    }

    private static void Flip(FileStream f, long offset) => Write(f, offset, [(byte)(Read(f, offset, 1)[0] ^ 0xFF)]);

    private static void Fill(FileStream f, long offset, int length, byte value)
    {
        var b = new byte[length];
        b.AsSpan().Fill(value);
        Write(f, offset, b);
    }

    private static byte[] Read(FileStream f, long offset, int length)
    {
        var b = new byte[length];
        RandomAccess.Read(f.SafeFileHandle, b, offset);
        return b;
    }

    private static void Write(FileStream f, long offset, byte[] bytes) => RandomAccess.Write(f.SafeFileHandle, bytes, offset);
}
