// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Swap;
using VRescue.TestSupport;

namespace VRescue.Formats.Tests.Swap;

/// <summary>Swap areas from util-linux mkswap (4 KiB and 64 KiB pages); expected uuid/label from blkid.</summary>
public sealed class LinuxSwapHeaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-swap-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealTheory("mkswap", "blkid")]
    [InlineData(4096)]
    [InlineData(65536)]
    public void Decode_matches_mkswap_and_blkid(int pageBytes)
    {
        var file = Path.Combine(_dir, $"swap-{pageBytes}.img");
        using (var f = File.Create(file))
        {
            f.SetLength(8L << 20);
        }

        Repo.Run("mkswap", $"-p {pageBytes} -L swaplabel \"{file}\"");
        var header = LinuxSwapHeader.TryDecode(File.ReadAllBytes(file).AsSpan(0, 65536));

        Assert.NotNull(header);
        Assert.Equal(pageBytes, header.PageSizeBytes);
        Assert.Equal(1u, header.Version);
        Assert.Equal(Repo.Run("blkid", $"-p -o value -s UUID \"{file}\"").Trim(), header.Uuid.ToString());
        Assert.Equal("swaplabel", header.Label);
        Assert.Equal(8L << 20, header.AreaBytes);
        Assert.Empty(header.Validate(8L << 20));
        Assert.Equal("SWAP_BEYOND_VOLUME", Assert.Single(header.Validate((8L << 20) - pageBytes)).Code);
    }

    [Fact]
    public void Hostile_headers_give_findings_not_exceptions()
    {
        var page = new byte[4096];
        "SWAPSPACE2"u8.CopyTo(page.AsSpan(4086));
        Assert.Null(LinuxSwapHeader.TryDecode(page.AsSpan(0, 4095)));

        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1024), 7);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1028), 3);
        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(1032), uint.MaxValue);
        var header = LinuxSwapHeader.TryDecode(page)!;
        Assert.Equal(["SWAP_VERSION", "SWAP_TOO_SMALL", "SWAP_BAD_PAGES"], header.Validate(1 << 20).Select(f => f.Code));

        // A big-endian host's header (version 1 stored as 00 00 00 01) is read in its own byte order.
        BinaryPrimitives.WriteUInt32BigEndian(page.AsSpan(1024), 1);
        BinaryPrimitives.WriteUInt32BigEndian(page.AsSpan(1028), 255);
        BinaryPrimitives.WriteUInt32BigEndian(page.AsSpan(1032), 0);
        header = LinuxSwapHeader.TryDecode(page)!;
        Assert.True(header.BigEndian);
        Assert.Equal(256L * 4096, header.AreaBytes);
        Assert.Empty(header.Validate(1 << 20));
    }
}
