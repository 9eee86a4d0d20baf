// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;

namespace VRescue.Formats.Vhd;

/// <summary>A byte range holding VHD metadata (footer copy, header, BAT, batmap, locators) that no block may overlap.</summary>
public readonly record struct VhdMetadataRange(string What, long OffsetBytes, long LengthBytes)
{
    public long EndBytes => checked(OffsetBytes + LengthBytes);
}

/// <summary>
/// The Block Allocation Table: u32 big-endian sector numbers of each block's bitmap, 0xFFFFFFFF = unallocated
/// (VHD spec; blktap libvhd.c vhd_read_bat). Holds only the entries within the virtual size.
/// </summary>
public sealed class VhdBat
{
    /// <summary>Entry value for a block with no data in this VHD.</summary>
    public const uint Unallocated = 0xFFFFFFFF;

    /// <summary>Most entries VRescue decodes (16 MiB of BAT; 2040 GiB at 2 MiB blocks needs 1,044,480).</summary>
    public const int MaxEntries = 1 << 22;

    /// <summary>Findings per validation are capped so a hostile BAT cannot flood the report.</summary>
    public const int MaxFindings = 64;

    private readonly uint[] _entries;

    private VhdBat(uint[] entries, long tableOffsetBytes)
    {
        _entries = entries;
        TableOffsetBytes = tableOffsetBytes;
    }

    /// <summary>Absolute offset the BAT was read from (finding offsets are absolute).</summary>
    public long TableOffsetBytes { get; }

    /// <summary>Number of decoded entries (the blocks covering the virtual size).</summary>
    public int Count => _entries.Length;

    public IReadOnlyList<uint> Entries => _entries;

    /// <summary>Entry for <paramref name="block"/>; blocks beyond the decoded entries are unallocated.</summary>
    public uint this[long block] => block >= 0 && block < _entries.Length ? _entries[block] : Unallocated;

    public bool IsAllocated(long block) => this[block] != Unallocated;

    public int AllocatedCount => _entries.Count(e => e != Unallocated);

    /// <summary>Decodes <c>bytes.Length / 4</c> entries (the caller reads only the used entries; see <see cref="VhdDynamicHeader.UsedTableEntries"/>).</summary>
    public static VhdBat Decode(ReadOnlySpan<byte> bytes, long tableOffsetBytes)
    {
        var count = bytes.Length / 4;
        if (count > MaxEntries)
        {
            throw new ArgumentException($"BAT of {count} entries exceeds {MaxEntries}; bound it before reading", nameof(bytes));
        }

        var entries = new uint[count];
        for (var i = 0; i < count; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt32BigEndian(bytes[(i * 4)..]);
        }

        return new VhdBat(entries, tableOffsetBytes);
    }

    /// <summary>Builds a BAT from entries (for encoders and tests).</summary>
    public static VhdBat FromEntries(IEnumerable<uint> entries, long tableOffsetBytes) => new(entries.ToArray(), tableOffsetBytes);

    /// <summary>
    /// Checks every allocated entry: the block (bitmap + data, <paramref name="blockSpanSectors"/>) must lie inside the
    /// source before its last sector, must not overlap metadata and must not overlap another block.
    /// </summary>
    public IReadOnlyList<Finding> Validate(long blockSpanSectors, long sourceLengthBytes, IReadOnlyList<VhdMetadataRange> metadata)
    {
        var findings = new List<Finding>();
        var dataEndBytes = sourceLengthBytes - VhdFooterLayout.Size;
        var allocated = new List<int>();
        for (var i = 0; i < _entries.Length && findings.Count < MaxFindings; i++)
        {
            var entry = _entries[i];
            if (entry == Unallocated)
            {
                continue;
            }

            allocated.Add(i);
            var start = (long)entry * 512;
            var end = checked(start + blockSpanSectors * 512);
            var at = checked(TableOffsetBytes + i * 4L);
            if (end > dataEndBytes)
            {
                findings.Add(new Finding("VHD_BAT_ENTRY_OUT_OF_RANGE", Severity.Error,
                    $"block {i} at sector {entry} ends at byte {end}, past the data area of the source ({dataEndBytes} bytes); missing bytes read as zero",
                    at, $"bat[{i}]", entry.ToString(), $"<= {Math.Max(0, dataEndBytes / 512 - blockSpanSectors)}"));
                continue;
            }

            foreach (var m in metadata)
            {
                if (start < m.EndBytes && m.OffsetBytes < end)
                {
                    findings.Add(new Finding("VHD_BAT_ENTRY_IN_METADATA", Severity.Error,
                        $"block {i} at sector {entry} overlaps the {m.What} at {Hex.Offset(m.OffsetBytes)}",
                        at, $"bat[{i}]", entry.ToString(), $"outside {Hex.Offset(m.OffsetBytes)}..{Hex.Offset(m.EndBytes)}"));
                    break;
                }
            }
        }

        allocated.Sort((a, b) => _entries[a].CompareTo(_entries[b]));
        for (var k = 1; k < allocated.Count && findings.Count < MaxFindings; k++)
        {
            var prev = allocated[k - 1];
            var cur = allocated[k];
            if ((long)_entries[cur] < _entries[prev] + blockSpanSectors)
            {
                findings.Add(new Finding("VHD_BAT_ENTRY_OVERLAP", Severity.Error,
                    $"blocks {prev} and {cur} overlap (sectors {_entries[prev]} and {_entries[cur]}, {blockSpanSectors} sectors per block)",
                    checked(TableOffsetBytes + cur * 4L), $"bat[{cur}]", _entries[cur].ToString(), $">= {_entries[prev] + blockSpanSectors}"));
            }
        }

        if (findings.Count >= MaxFindings)
        {
            findings.Add(new Finding("VHD_BAT_FINDINGS_TRUNCATED", Severity.Info, $"only the first {MaxFindings} BAT findings are listed", TableOffsetBytes));
        }

        return findings;
    }

    /// <summary>Writes the entries big-endian and pads with 0xFF to <c>destination.Length</c> (a sector-padded BAT).</summary>
    public void Encode(Span<byte> destination)
    {
        destination.Fill(0xFF);
        for (var i = 0; i < _entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[(i * 4)..], _entries[i]);
        }
    }
}
