// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text.RegularExpressions;
using VRescue.Formats.Xfs;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Xfs;

/// <summary>mkfs.xfs images; expected geometry and identity from xfs_db.</summary>
public sealed class XfsSuperblockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-xfs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact("mkfs.xfs", "xfs_db")]
    public void Decode_matches_xfs_db()
    {
        var img = Path.Combine(_dir, "xfs.img");
        using (var f = File.Create(img))
        {
            f.SetLength(300L << 20);
        }

        Repo.Run("mkfs.xfs", $"-q -f -L xlabel \"{img}\"");
        var db = Repo.Run("xfs_db", $"-r -c uuid -c \"sb 0\" -c \"p blocksize dblocks agblocks agcount\" \"{img}\"");
        long Field(string name) => long.Parse(Regex.Match(db, $@"^{name} = (\d+)$", RegexOptions.Multiline).Groups[1].Value);

        var sb = XfsSuperblock.TryDecode(File.ReadAllBytes(img).AsSpan(0, 512))!;
        Assert.Equal(Regex.Match(db, @"UUID = ([0-9a-f-]{36})").Groups[1].Value, sb.Uuid.ToString());
        Assert.Equal("xlabel", sb.Label);
        Assert.Equal(Field("blocksize"), sb.BlockSizeBytes);
        Assert.Equal(Field("dblocks"), (long)sb.DataBlocks);
        Assert.Equal(Field("agblocks"), sb.AgBlocks);
        Assert.Equal(Field("agcount"), sb.AgCount);
        Assert.True(sb.IsGeometrySane);
    }

    [Fact]
    public void Short_or_inconsistent_superblocks_are_refused_or_flagged()
    {
        var sector = new byte[512];
        "XFSB"u8.CopyTo(sector);
        Assert.Null(XfsSuperblock.TryDecode(sector.AsSpan(0, XfsSuperblock.MinimumBytes - 1)));
        Assert.Null(XfsSuperblock.TryDecode(new byte[512]));

        BinaryPrimitives.WriteUInt32BigEndian(sector.AsSpan(4), 4096);
        BinaryPrimitives.WriteUInt64BigEndian(sector.AsSpan(8), ulong.MaxValue);
        BinaryPrimitives.WriteUInt32BigEndian(sector.AsSpan(84), 100);
        BinaryPrimitives.WriteUInt32BigEndian(sector.AsSpan(88), 4);
        Assert.False(XfsSuperblock.TryDecode(sector)!.IsGeometrySane);
        BinaryPrimitives.WriteUInt64BigEndian(sector.AsSpan(8), 400);
        Assert.True(XfsSuperblock.TryDecode(sector)!.IsGeometrySane);
        BinaryPrimitives.WriteUInt32BigEndian(sector.AsSpan(4), 3000);
        Assert.False(XfsSuperblock.TryDecode(sector)!.IsGeometrySane);
    }
}
