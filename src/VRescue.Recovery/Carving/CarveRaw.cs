// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Storage;

namespace VRescue.Recovery.Carving;

/// <summary>
/// A raw VDI (LV-&lt;uuid&gt;, no VHD structure) found by its guest ext4 primary superblock at offset 0x400 of an extent
/// that no VHD, MGT or current LV holds. Its length comes from the superblock (blocks count x block size); its
/// extents are proven only where a superblock copy of the same file system (same uuid, the group number the offset
/// implies) sits exactly where the placement puts it. Extents holding only file data prove nothing.
/// </summary>
public sealed class CarvedRawVdi
{
    public required CarvePe First { get; init; }
    public required Guid FsUuid { get; init; }
    public required string VolumeName { get; init; }
    public required long FsSizeBytes { get; init; }
    public required long ExtentCount { get; init; }

    /// <summary>Every superblock copy sits where one contiguous run of extents from <see cref="First"/> puts it.</summary>
    public required bool Contiguous { get; init; }

    /// <summary>Per LE: placed extent (null = not provable).</summary>
    public required CarvedExtent?[] Extents { get; init; }

    /// <summary>LE -> PEs holding this file system's superblock copy for that LE (the candidates the report gives).</summary>
    public required IReadOnlyDictionary<long, IReadOnlyList<long>> Candidates { get; init; }

    public List<Finding> Findings { get; } = [];

    /// <summary>Stand-in LV name: the VDI uuid is gone with the LV names, so the file system uuid names it.</summary>
    public string LvName => "raw-ext4-" + FsUuid.ToString("D");

    /// <summary>Exported (and put into carved.vg) only when contiguous and every extent is placed.</summary>
    public bool Recovered => Contiguous && Extents.All(e => e is not null);
}

/// <summary>Finds raw VDIs by their guest ext4 (see <see cref="CarvedRawVdi"/>).</summary>
public static class CarveRaw
{
    private const int PrimaryOffsetInExtent = Ext4Superblock.OffsetBytes;
    private const long MaxGroups = 1 << 20;

    /// <summary>Bounds for hostile PVs: primary superblocks examined, superblock copies checked per file system.</summary>
    public const int MaxCandidates = 1024;
    public const int MaxCheckpoints = 4096;

    /// <summary>
    /// Raw VDI candidates among <paramref name="pes"/> not in <paramref name="taken"/> (keys, <see cref="CarveSolver.Key"/>).
    /// Reads one superblock per candidate; everything else comes from the scan's superblock observations.
    /// </summary>
    public static List<CarvedRawVdi> Find(IReadOnlyList<CarvePe[]> pes, IReadOnlyList<IBlockSource> sources, long extentSizeBytes, IReadOnlySet<long> taken,
        List<Finding> findings)
    {
        bool Free(CarvePe p) => p.IsQuiet && (p.Kind & CarvePeKind.BadHead) == 0 && !taken.Contains(CarveSolver.Key(p.Source, p.Pe));
        var copies = new Dictionary<(Guid Fs, int Group), List<(CarvePe Pe, int Offset)>>();
        foreach (var p in pes.SelectMany(x => x))
        {
            foreach (var h in p.Ext4)
            {
                (copies.TryGetValue((h.FsUuid, h.GroupNumber), out var l) ? l : copies[(h.FsUuid, h.GroupNumber)] = []).Add((p, h.OffsetInExtent));
            }
        }

        var total = pes.Sum(p => (long)p.Length);
        var result = new List<CarvedRawVdi>();
        var seen = new HashSet<Guid>();
        var examined = 0;
        foreach (var p in pes.SelectMany(x => x).Where(p => Free(p) && p.Ext4.Any(h => h.OffsetInExtent == PrimaryOffsetInExtent && h.GroupNumber == 0)))
        {
            if (++examined > MaxCandidates)
            {
                findings.Add(new Finding("CARVE_RAW_TOO_MANY", Severity.Warning,
                    $"more than {MaxCandidates} extents start with an ext4 primary superblock; the rest (from PE {p.Pe}) were not examined", p.OffsetBytes));
                break;
            }

            var raw = new byte[Ext4Superblock.SizeBytes];
            if (sources[p.Source].ReadAt(checked(p.OffsetBytes + PrimaryOffsetInExtent), raw) < raw.Length)
            {
                continue;
            }

            var sb = Ext4Superblock.Decode(raw);
            var (first, perGroup) = (sb.FirstDataBlock, sb.BlocksPerGroup);
            // Linux fs/ext4/super.c: s_blocks_per_group is a multiple of 8 and at most 8 x block size (one bitmap block).
            if (sb.Magic != Ext4Superblock.MagicValue || sb.BlockSizeBytes is not { } bs || perGroup == 0 || perGroup % 8 != 0 || perGroup > 8L * bs
                || sb.BlocksCount <= first
                || sb.BlocksCount > (ulong)(total * extentSizeBytes / bs))
            {
                findings.Add(new Finding("CARVE_RAW_SUPERBLOCK_UNUSABLE", Severity.Warning,
                    $"ext4 superblock at PE {p.Pe} +0x400 (fs {sb.Uuid}) has a size or geometry that cannot be a raw VDI on these PVs (blocks {sb.BlocksCount}, block size {sb.BlockSizeBytes}); ignored",
                    p.OffsetBytes + PrimaryOffsetInExtent, "s_blocks_count", sb.BlocksCount.ToString()));
                continue;
            }

            if (!seen.Add(sb.Uuid))
            {
                findings.Add(new Finding("CARVE_RAW_DUPLICATE_FS", Severity.Warning,
                    $"a second primary ext4 superblock of fs {sb.Uuid} at PE {p.Pe} (a copy or stale file system); only the first is carved", p.OffsetBytes + PrimaryOffsetInExtent));
                continue;
            }

            var fsBytes = checked((long)sb.BlocksCount * bs);
            var count = (fsBytes + extentSizeBytes - 1) / extentSizeBytes;
            var groups = (long)Math.Min((sb.BlocksCount - first + perGroup - 1) / perGroup, (ulong)MaxGroups);
            var sparse = (sb.FeatureRoCompat & Ext4Superblock.RoCompatSparseSuper) != 0;

            // Superblock copies: group g starts at block first + g x blocks_per_group (ext4_group_first_block_no); with
            // sparse_super only groups 0, 1 and powers of 3, 5 and 7 hold one (ext4_bg_has_super).
            var checkpoints = new List<(int Group, long Le, int Offset)> { (0, 0, PrimaryOffsetInExtent) };
            for (var g = 1L; g < groups && checkpoints.Count < MaxCheckpoints; g++)
            {
                if (!sparse || g == 1 || IsPowerOf(g, 3) || IsPowerOf(g, 5) || IsPowerOf(g, 7))
                {
                    var guest = checked((first + (g * perGroup)) * bs);
                    checkpoints.Add(((int)g, guest / extentSizeBytes, (int)(guest % extentSizeBytes)));
                }
            }

            var extents = new CarvedExtent?[count];
            var candidates = new Dictionary<long, IReadOnlyList<long>>();
            var contiguous = p.Pe + count <= pes[p.Source].Length;
            var misses = new List<string>();
            foreach (var (g, le, off) in checkpoints)
            {
                var at = copies.GetValueOrDefault((sb.Uuid, g), []).Where(c => c.Offset == off && c.Pe.Source == p.Source).Select(c => c.Pe.Pe).Order().ToList();
                candidates[le] = at;
                if (!at.Contains(p.Pe + le))
                {
                    contiguous = false;
                    misses.Add($"group {g}'s copy (LE {le} +0x{off:X}) is not at PE {p.Pe + le}" + (at.Count > 0 ? $" but at PE(s) {string.Join(", ", at)}" : ", nor anywhere"));
                }
            }

            for (var le = 0L; contiguous && le < count; le++)
            {
                contiguous = Free(pes[p.Source][p.Pe + le]);
            }

            foreach (var (g, le, off) in checkpoints)
            {
                var at = candidates[le];
                var pe = contiguous ? p.Pe + le : at.Count == 1 ? at[0] : (long?)null;
                if (pe is { } x && extents[le] is null)
                {
                    extents[le] = new CarvedExtent(le, p.Source, x, 0.9, [$"ext4 superblock of group {g} (fs {sb.Uuid}) @0x{off:X}, where its group puts it"]);
                }
            }

            if (contiguous)
            {
                for (var le = 0L; le < count; le++)
                {
                    extents[le] ??= new CarvedExtent(le, p.Source, p.Pe + le, 0.6,
                        [$"contiguous run from PE {p.Pe}: every superblock copy of fs {sb.Uuid} is where one run puts it and the PEs between are free; this extent holds no superblock, so its place is not proven"]);
                }
            }

            var v = new CarvedRawVdi
            {
                First = p, FsUuid = sb.Uuid, VolumeName = sb.VolumeName, FsSizeBytes = fsBytes, ExtentCount = count, Contiguous = contiguous,
                Extents = extents, Candidates = candidates,
            };
            if (!contiguous)
            {
                var unknown = Enumerable.Range(0, (int)count).Where(i => extents[i] is null).Select(i => (long)i).ToList();
                v.Findings.Add(new Finding("CARVE_RAW_UNPROVEN", Severity.Warning,
                    $"{v.LvName}: raw VDI with ext4 fs {sb.Uuid} ({fsBytes} bytes, {count} extents) from PE {p.Pe} is not contiguous: {string.Join("; ", misses)}. " +
                    $"Placed by superblock copies: LE(s) {Carver.Ranges(extents.Where(e => e is not null).Select(e => e!.LogicalExtent))}; " +
                    $"not provable (only file data there): LE(s) {Carver.Ranges(unknown)}; not exported",
                    p.OffsetBytes + PrimaryOffsetInExtent));
            }

            result.Add(v);
        }

        return result;
    }

    private static bool IsPowerOf(long n, long b)
    {
        while (n > 1 && n % b == 0)
        {
            n /= b;
        }

        return n == 1;
    }
}
