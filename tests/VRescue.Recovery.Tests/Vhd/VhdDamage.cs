// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Security.Cryptography;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Vhd;
using VRescue.Storage;
using VRescue.TestSupport;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>Damage recipes applied to copies of real VHDs, and helpers to read results back.</summary>
internal static class VhdDamage
{
    public static string Copy(string from, string dir, string name)
    {
        var to = Path.Combine(dir, name);
        File.Copy(from, to, overwrite: true);
        return to;
    }

    public static void Write(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        f.Write(bytes);
    }

    public static void Fill(string path, long offset, int length, byte value)
    {
        var b = new byte[length];
        b.AsSpan().Fill(value);
        Write(path, offset, b);
    }

    public static void KillFooter(string path) => Fill(path, new FileInfo(path).Length - 512, 512, 0xC7);

    public static void SetBatEntry(string path, long block, uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        Write(path, 1536 + block * 4, b);
    }

    public static uint BatEntry(string path, long block)
    {
        using var f = FileBlockSource.Open(path);
        return BinaryPrimitives.ReadUInt32BigEndian(f.ReadBytes(1536 + block * 4, 4));
    }

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

    /// <summary>Writes a raw image as a XenServer-layout dynamic VHD (every non-zero block allocated, full bitmaps), checked with qemu-img.</summary>
    public static string RawToXenVhd(string raw, string vhd)
    {
        using (var source = FileBlockSource.Open(raw))
        using (var handle = File.OpenHandle(vhd, FileMode.Create, FileAccess.ReadWrite))
        {
            var data = new byte[2 << 20];
            var full = new byte[512];
            full.AsSpan().Fill(0xFF);
            XenVhdWriter.Write(handle, new VhdFooter { Uuid = Guid.NewGuid() }, source, block =>
            {
                var n = (int)Math.Min(data.Length, source.LengthBytes - block * data.Length);
                source.ReadExactlyAt(block * data.Length, data.AsSpan(0, n));
                return data.AsSpan(0, n).ContainsAnyExcept((byte)0) ? full : null;
            });
        }

        return vhd;
    }

    public static string QemuRawSha(string vhd)
    {
        var raw = vhd + ".qemu.raw";
        Repo.Run("qemu-img", $"convert -f vpc -O raw \"{vhd}\" \"{raw}\"");
        var sha = Repo.Sha256File(raw);
        File.Delete(raw);
        return sha;
    }
}
