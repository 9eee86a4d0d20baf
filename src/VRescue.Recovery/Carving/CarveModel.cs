// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Recovery.Carving;

/// <summary>Knobs for <see cref="Carver"/>. Defaults match XenServer SRs (4 MiB extents, pe_start 11 MiB).</summary>
public sealed record CarveOptions
{
    /// <summary>LVM extent size; XenServer never passes -s, so lvm2's default 4 MiB.</summary>
    public long ExtentSizeBytes { get; init; } = 4L << 20;

    /// <summary>Byte offset of PE 0 in each source; null = inferred (MGT at PE 0, else the head grid, else 11 MiB).</summary>
    public long? PeStartBytes { get; init; }

    /// <summary>At most this many VHD heads are opened (each costs one extent of BAT); the rest become a finding.</summary>
    public int MaxHeads { get; init; } = 20_000;

    /// <summary>At most this many candidate PEs are scored per logical extent (nearest to the allocator's hint first).</summary>
    public int MaxCandidatesPerExtent { get; init; } = 16;

    /// <summary>
    /// Fitting PEs kept per extent for the allocator sweep (the nearest to the allocator's hint): bounds the solver's memory
    /// to extents x this when thousands of PEs look alike.
    /// </summary>
    public int MaxFittingPerExtent { get; init; } = 256;

    /// <summary>Two candidates whose scores differ by less than this are reported as ambiguous.</summary>
    public double AmbiguityMargin { get; init; } = 0.05;

    /// <summary>Read the sources' current LVM metadata (a re-created SR) and leave the extents of its LVs alone.</summary>
    public bool ExcludeCurrentMetadata { get; init; } = true;

    /// <summary>Extents (source index, absolute byte offset) that metadata the caller uses maps to other LVs (older versions
    /// of a VG from its ring or a backup): left alone like a current VG's.</summary>
    public IReadOnlyCollection<(int Source, long OffsetBytes)> KnownExtents { get; init; } = [];

    /// <summary>Reader threads for the scan.</summary>
    public int Parallelism { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 8);
}

/// <summary>Progress of a carve: phase name and extents done of total.</summary>
public readonly record struct CarveProgress(string Phase, long Done, long Total);

/// <summary>Wall-clock time per phase, so the solver can be measured apart from I/O.</summary>
public sealed record CarveTimings(TimeSpan Scan, TimeSpan Catalog, TimeSpan Solve, long ScannedBytes);

/// <summary>What one physical extent looked like to the scanner.</summary>
[Flags]
public enum CarvePeKind
{
    None = 0,
    /// <summary>All bytes zero.</summary>
    Zero = 1,
    /// <summary><c>conectix</c> @0 and <c>cxsparse</c> @0x200 with valid checksums: first extent of a VHD LV.</summary>
    VhdHead = 2,
    /// <summary><c>tdbatmap</c> @0x600: second extent of an SM-created VHD LV.</summary>
    Batmap = 4,
    /// <summary>VHD footer @extent end - 512: last extent of a VHD LV (or a stale old end).</summary>
    TailFooter = 8,
    /// <summary>0xC7 x 512 @extent end - 512: killed footer of a VHD open read-write.</summary>
    TailKilled = 16,
    /// <summary><c>XSSM:</c> @0: MGT volume.</summary>
    Mgt = 32,
    /// <summary>SM journal LV content (<c>&lt;len&gt; &lt;value&gt;</c>) or <c>vjournal</c>.</summary>
    Journal = 64,
    /// <summary><c>conectix</c> @0 that does not decode as a VHD head (bad checksum, no <c>cxsparse</c>).</summary>
    BadHead = 128,
    /// <summary>
    /// A valid <c>cxsparse</c> header @0x200 (and BAT) under a damaged or missing footer copy @0: a VHD head whose footer
    /// Carver takes from the LV end or rebuilds (<see cref="CarvePe.HeadHeader"/> and <see cref="CarvePe.HeadBat"/> set, no
    /// <see cref="CarvePe.HeadFooter"/>); <see cref="VhdHead"/> is added once it has one.
    /// </summary>
    HeadFooterDamaged = 256,
}

/// <summary>An ext4 superblock (primary or backup) found inside an extent.</summary>
public readonly record struct CarveExt4Hit(int OffsetInExtent, Guid FsUuid, int GroupNumber, long BlockSizeBytes, long BlocksPerGroup, long FirstDataBlock);

/// <summary>
/// The scanner's compact record of one PE: signatures at the fixed offsets and the VHD bitmap sectors seen on
/// the 4 KiB grid (offset = 0xE00 + 4096 x position, a non-zero sector after a zero 7-sector gap).
/// </summary>
public sealed class CarvePe
{
    public const int MaxBitmapObservations = 48;

    public required int Source { get; init; }
    public required long Pe { get; init; }
    public required long OffsetBytes { get; init; }
    public CarvePeKind Kind { get; set; }
    public VhdFooter? HeadFooter { get; set; }
    public VhdDynamicHeader? HeadHeader { get; set; }
    public uint[]? HeadBat { get; set; }
    public VhdBatmapHeader? BatmapHeader { get; set; }
    public byte[]? Batmap { get; set; }
    public VhdFooter? Tail { get; set; }
    public Guid? MgtSrUuid { get; set; }
    public string? JournalText { get; set; }

    /// <summary>Positions (0..1023) of bitmap-like sectors; bit 15 set = all 0xFF (a full block).</summary>
    public List<ushort> Bitmaps { get; } = [];

    /// <summary>The 512 bytes of each observed bitmap sector, same order as <see cref="Bitmaps"/>.</summary>
    public List<byte[]> BitmapSectors { get; } = [];

    /// <summary>One bit per 512-byte sector of the extent: set when the sector holds a non-zero byte.</summary>
    public ulong[] NonZeroSectors { get; set; } = [];

    public bool BitmapsOverflow { get; set; }
    public List<CarveExt4Hit> Ext4 { get; } = [];

    /// <summary>True when nothing marks this extent as the start of something (a filler extent may go here).</summary>
    public bool IsQuiet => (Kind & (CarvePeKind.VhdHead | CarvePeKind.HeadFooterDamaged | CarvePeKind.Batmap | CarvePeKind.Mgt | CarvePeKind.Journal)) == 0;

    /// <summary>The first 512 bytes of a <see cref="CarvePeKind.HeadFooterDamaged"/> head (what is left of its footer copy).</summary>
    public byte[]? DamagedFooterCopy { get; set; }

    /// <summary>True when no footer was found for this damaged head and <see cref="CarveHeadFooters"/> rebuilt one.</summary>
    public bool FooterRebuilt { get; set; }
}

/// <summary>One VHD found by its head, with what its BAT says about its logical extents.</summary>
public sealed class CarvedVdi
{
    public required int Id { get; init; }
    public required CarvePe Head { get; init; }
    /// <summary>The head's footer; set again only when a rebuilt one learns the guest's size (<see cref="CarveHeadFooters.RefineRebuiltSizes"/>).</summary>
    public required VhdFooter Footer { get; set; }
    public required VhdDynamicHeader Header { get; init; }
    public required uint[] Bat { get; init; }
    public required long ExtentCount { get; set; }
    public required string LvName { get; set; }
    public Guid? VdiUuid { get; set; }

    /// <summary>name_label of the surviving MGT record with this VDI uuid (null when none links).</summary>
    public string? NameLabel { get; set; }
    public Guid? ParentVdiUuid { get; init; }
    public string? ParentLvName { get; set; }
    public int? ParentId { get; set; }

    /// <summary>Per logical extent: where it went (null = unplaced).</summary>
    public CarvedExtent?[] Extents { get; set; } = [];

    public List<Finding> Findings { get; } = [];

    /// <summary>Logical extents holding allocated blocks (or VHD metadata): must be placed.</summary>
    public SortedSet<long> RequiredExtents { get; } = [];

    public bool IsComplete => RequiredExtents.All(le => Extents[le] is { Filler: false });
}

/// <summary>Where one logical extent of a carved LV was placed, how sure we are and why.</summary>
public sealed record CarvedExtent(
    long LogicalExtent,
    int Source,
    long Pe,
    double Confidence,
    IReadOnlyList<string> Evidence,
    bool Filler = false,
    IReadOnlyList<long>? AlternativePes = null)
{
    public bool Ambiguous => AlternativePes is { Count: > 0 };
}

/// <summary>Everything a carve found: the extent grid, the VDIs and their maps, and findings.</summary>
public sealed class CarveResult
{
    public required IReadOnlyList<string> SourceNames { get; init; }
    public required IReadOnlyList<long> SourceLengths { get; init; }
    public required long PeStartBytes { get; init; }
    public required long ExtentSizeBytes { get; init; }
    public required IReadOnlyList<long> PeCounts { get; init; }
    public required IReadOnlyList<CarvedVdi> Vdis { get; init; }
    public (int Source, long Pe)? Mgt { get; init; }
    public Guid? SrUuid { get; init; }
    public required IReadOnlyList<Finding> Findings { get; init; }
    public required CarveTimings Timings { get; init; }
    public required int HeadCount { get; init; }

    /// <summary>VGs readable from current metadata (a re-created SR): their LVs' PEs were excluded from the carve.</summary>
    public IReadOnlyList<CarveCurrentVg> CurrentVgs { get; init; } = [];

    /// <summary>Raw VDIs found by their guest ext4 (recovered when contiguous, else reported with candidate extents).</summary>
    public IReadOnlyList<CarvedRawVdi> RawVdis { get; init; } = [];
}
