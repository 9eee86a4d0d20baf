// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Formats.Vhd;

namespace VRescue.Storage.Tests.Vhd;


internal static class VhdTestSupport
{
    public static string Sha256(IBlockSource source)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (long off = 0; off < source.LengthBytes; off += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, source.LengthBytes - off);
            source.ReadExactlyAt(off, buffer.AsSpan(0, n));
            sha.AppendData(buffer, 0, n);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// A small dynamic (or differencing) VHD laid out by hand: footer copy at 0, header at 512, BAT at 1536 (one
    /// sector), blocks of 2 MiB from sector 4, footer at the end. <paramref name="allocated"/> blocks get a full bitmap
    /// and data bytes equal to (block + 1).
    /// </summary>
    public static byte[] BuildDynamic(int blocks, int[] allocated, Action<VhdFooter, VhdDynamicHeader, uint[]>? inspect = null,
        Func<VhdFooter, VhdFooter>? footerEdit = null, Func<VhdDynamicHeader, VhdDynamicHeader>? headerEdit = null, Action<uint[]>? batEdit = null)
    {
        const int blockSpanSectors = 1 + 4096;
        var entries = Enumerable.Repeat(VhdBat.Unallocated, blocks).ToArray();
        for (var k = 0; k < allocated.Length; k++)
        {
            entries[allocated[k]] = (uint)(4 + k * blockSpanSectors);
        }

        batEdit?.Invoke(entries);
        var length = (4 + allocated.Length * (long)blockSpanSectors + 1) * 512;
        var image = new byte[length];
        var footer = new VhdFooter
        {
            DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = (ulong)blocks << 21, OriginalSizeBytes = (ulong)blocks << 21,
            DataOffsetBytes = 512, Uuid = Guid.NewGuid(), CreatorApplication = "test",
        };
        footer = footerEdit?.Invoke(footer) ?? footer;
        var header = new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = (uint)blocks };
        header = headerEdit?.Invoke(header) ?? header;
        inspect?.Invoke(footer, header, entries);
        footer.Encode(image);
        footer.Encode(image.AsSpan((int)length - 512));
        header.Encode(image.AsSpan(512));
        VhdBat.FromEntries(entries, 1536).Encode(image.AsSpan(1536, 512));
        for (var k = 0; k < allocated.Length; k++)
        {
            var bitmapAt = (4 + k * blockSpanSectors) * 512;
            image.AsSpan(bitmapAt, 512).Fill(0xFF);
            image.AsSpan(bitmapAt + 512, 2 << 20).Fill((byte)(allocated[k] + 1));
        }

        return image;
    }
}
