// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Numerics;

namespace VRescue.Formats.Xfs;

/// <summary>
/// The geometry and identity fields of an XFS superblock (big-endian, sector 0 of every allocation group; Linux
/// fs/xfs/libxfs/xfs_format.h struct xfs_dsb): sb_magicnum "XFSB" @0, sb_blocksize @4, sb_dblocks @8, sb_uuid @32,
/// sb_agblocks @84, sb_agcount @88, sb_fname[12] @108.
/// </summary>
public sealed record XfsSuperblock
{
    /// <summary>Bytes the fields below need.</summary>
    public const int MinimumBytes = 120;

    private const int BlockSizeOffset = 4, DataBlocksOffset = 8, UuidOffset = 32, AgBlocksOffset = 84, AgCountOffset = 88, LabelOffset = 108, LabelLength = 12;

    public static ReadOnlySpan<byte> Magic => "XFSB"u8;

    public required uint BlockSizeBytes { get; init; }
    public required ulong DataBlocks { get; init; }
    public required uint AgBlocks { get; init; }
    public required uint AgCount { get; init; }
    public required Guid Uuid { get; init; }
    public required string Label { get; init; }

    /// <summary>Block size a power of two in 512..65536, and sb_dblocks within the last AG: (agcount - 1) x agblocks .. agcount x agblocks.</summary>
    public bool IsGeometrySane => BitOperations.IsPow2(BlockSizeBytes) && BlockSizeBytes is >= 512 and <= 65536 && AgBlocks > 0 && AgCount > 0
        && DataBlocks > (ulong)(AgCount - 1) * AgBlocks && DataBlocks <= (ulong)AgCount * AgBlocks;

    /// <summary>Size of one allocation group.</summary>
    public long AgBytes => (long)AgBlocks * BlockSizeBytes;

    public static bool HasMagic(ReadOnlySpan<byte> sector) => sector.StartsWith(Magic);

    /// <summary>Decodes the fields from a superblock sector (no validation; see <see cref="IsGeometrySane"/>), or null if too short or not XFSB.</summary>
    public static XfsSuperblock? TryDecode(ReadOnlySpan<byte> sector)
    {
        if (sector.Length < MinimumBytes || !HasMagic(sector))
        {
            return null;
        }

        return new XfsSuperblock
        {
            BlockSizeBytes = BinaryPrimitives.ReadUInt32BigEndian(sector[BlockSizeOffset..]),
            DataBlocks = BinaryPrimitives.ReadUInt64BigEndian(sector[DataBlocksOffset..]),
            AgBlocks = BinaryPrimitives.ReadUInt32BigEndian(sector[AgBlocksOffset..]),
            AgCount = BinaryPrimitives.ReadUInt32BigEndian(sector[AgCountOffset..]),
            Uuid = new Guid(sector.Slice(UuidOffset, 16), bigEndian: true),
            Label = System.Text.Encoding.Latin1.GetString(sector.Slice(LabelOffset, LabelLength)).TrimEnd('\0'),
        };
    }
}
