// SPDX-License-Identifier: MIT
using VRescue.Storage.Scanning;

namespace VRescue.Storage.Tests.Scanning;

public class NonZeroSectorMapTests
{
    private const int Sector = NonZeroSectorMap.SectorBytes;

    /// <summary>The plain loop the vectorised map must agree with.</summary>
    private static ulong[] Reference(byte[] bytes)
    {
        var map = new ulong[NonZeroSectorMap.WordCount(bytes.Length)];
        for (var s = 0; s < bytes.Length / Sector; s++)
        {
            for (var i = 0; i < Sector; i++)
            {
                if (bytes[(s * Sector) + i] != 0)
                {
                    map[s >> 6] |= 1UL << (s & 63);
                    break;
                }
            }
        }

        return map;
    }

    private static void AssertMatchesReference(byte[] bytes)
    {
        var map = new ulong[NonZeroSectorMap.WordCount(bytes.Length) + 1];
        map.AsSpan().Fill(0xDEAD_BEEF);                                  // stale words must be overwritten
        var any = NonZeroSectorMap.Fill(bytes, map);
        var want = Reference(bytes);
        Assert.Equal(want, map[..want.Length]);
        Assert.Equal(0xDEAD_BEEFUL, map[^1]);                             // and nothing past the map written
        Assert.Equal(want.Any(w => w != 0), any);
    }

    public static TheoryData<int> Lengths => [0, 511, 512, 513, 1000, 4096, 32 * 1024 - 512, 32 * 1024, 32 * 1024 + 512, 100 * Sector + 17, 4 << 20];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void All_zero_bytes_give_an_empty_map(int length) => AssertMatchesReference(new byte[length]);

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Random_bytes_match_the_reference_loop(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        AssertMatchesReference(bytes);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Only_the_last_byte_non_zero_is_seen_in_its_sector_and_not_in_a_partial_tail(int length)
    {
        var bytes = new byte[length];
        if (length > 0)
        {
            bytes[^1] = 1;
        }

        AssertMatchesReference(bytes);
    }

    [Fact]
    public void Single_non_zero_byte_at_every_offset_of_a_sector_is_seen()
    {
        // Offsets past the first 8 bytes take the full-sector path; 8 and 63/64 are the vector boundaries.
        for (var at = 0; at < Sector; at++)
        {
            var bytes = new byte[3 * Sector];
            bytes[Sector + at] = 0x80;
            var map = new ulong[1];
            Assert.True(NonZeroSectorMap.Fill(bytes, map));
            Assert.Equal(0b010UL, map[0]);
        }
    }

    [Fact]
    public void Sparse_mixed_sectors_match_the_reference_loop()
    {
        // Zero, random, 0xFF and single-byte sectors mixed, with whole zero 32 KiB words among them.
        var rnd = new Random(7);
        var bytes = new byte[(1 << 20) + 3 * Sector];
        for (var s = 0; s < bytes.Length / Sector; s++)
        {
            var sector = bytes.AsSpan(s * Sector, Sector);
            switch ((s / 64 % 4 == 1) ? 0 : rnd.Next(5))
            {
                case 1: rnd.NextBytes(sector); break;
                case 2: sector.Fill(0xFF); break;
                case 3: sector[rnd.Next(Sector)] = (byte)rnd.Next(1, 256); break;
                case 4: sector[Sector - 1] = 1; break;
            }
        }

        AssertMatchesReference(bytes);
    }

    [Fact]
    public void Too_small_a_map_is_a_caller_bug() =>
        Assert.Throws<ArgumentException>(() => NonZeroSectorMap.Fill(new byte[65 * Sector], new ulong[1]));
}
