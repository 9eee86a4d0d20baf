// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;

namespace VRescue.Formats.Mbr;

/// <summary>A logical partition found in an EBR: the stored entry plus where it lives on the disk.</summary>
/// <param name="Index">Linux numbering: 5 for the first logical partition, then 6, 7, ...</param>
/// <param name="EbrLba">Absolute LBA of the EBR holding the entry.</param>
/// <param name="Entry">The entry as stored; its FirstLba is relative to <paramref name="EbrLba"/>.</param>
public sealed record MbrLogicalPartition(int Index, long EbrLba, MbrPartitionEntry Entry)
{
    /// <summary>Absolute first sector.</summary>
    public long FirstLba => checked(EbrLba + Entry.FirstLba);

    public long SizeSectors => Entry.SizeSectors;

    /// <summary>Absolute first sector after the partition.</summary>
    public long EndLbaExclusive => checked(FirstLba + SizeSectors);

    /// <summary>Absolute start in bytes.</summary>
    public long StartBytes => checked(FirstLba * MbrLayout.SectorBytes);

    public long SizeBytes => Entry.SizeBytes;
}

/// <summary>
/// Walks the EBR chain of an extended partition without doing I/O: <see cref="NextEbrLba"/> names the sector
/// the caller must read next and <see cref="Accept"/> takes it. The walk has a hop limit and a visited set, so
/// a chain that loops or runs away ends with a finding. In each EBR (UEFI spec 2.10 section 5.2.1 describes
/// the MBR; EBRs reuse the layout) the data entry's LBA is relative to the EBR and the link entry's LBA is
/// relative to the start of the extended partition.
/// </summary>
public sealed class MbrExtendedChain
{
    /// <summary>Most EBRs followed; Linux stops well below this (DISK_MAX_PARTS 256 over all partitions).</summary>
    public const int MaxHops = 128;

    /// <summary>Number given to the first logical partition, as Linux and libfdisk do.</summary>
    public const int FirstLogicalIndex = 5;

    private readonly long _extendedFirstLba;
    private readonly long _extendedEndLbaExclusive;
    private readonly long _diskSizeSectors;
    private readonly HashSet<long> _visited = [];
    private readonly List<MbrLogicalPartition> _partitions = [];
    private readonly List<Finding> _findings = [];
    private int _hops;

    /// <summary>Starts a walk for the extended entry <paramref name="extended"/> of the MBR at LBA 0.</summary>
    public MbrExtendedChain(MbrPartitionEntry extended, long diskSizeSectors)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(diskSizeSectors);
        _extendedFirstLba = extended.FirstLba;
        _extendedEndLbaExclusive = extended.EndLbaExclusive;
        _diskSizeSectors = diskSizeSectors;
        Schedule(_extendedFirstLba, MbrLayout.EntryOffset(extended.Index) + MbrEntryLayout.StartingLbaOffset);
    }

    /// <summary>Absolute LBA of the EBR to read next and pass to <see cref="Accept"/>; null when the walk is over.</summary>
    public long? NextEbrLba { get; private set; }

    /// <summary>Logical partitions found so far, in chain order.</summary>
    public IReadOnlyList<MbrLogicalPartition> Partitions => _partitions;

    /// <summary>Findings with absolute offsets. Codes: MBR_EBR_NO_SIGNATURE, MBR_EBR_BEYOND_DISK, MBR_EBR_LOOP,
    /// MBR_EBR_HOP_LIMIT, MBR_EBR_OUTSIDE_EXTENDED, MBR_EBR_EXTRA_ENTRIES, MBR_LOGICAL_AT_EBR,
    /// MBR_LOGICAL_BEYOND_DISK, MBR_LOGICAL_OUTSIDE_EXTENDED, MBR_LOGICAL_OVERLAP.</summary>
    public IReadOnlyList<Finding> Findings => _findings;

    /// <summary>Takes the 512-byte sector read at <see cref="NextEbrLba"/> and decides the next one.</summary>
    public void Accept(ReadOnlySpan<byte> ebrSector)
    {
        if (NextEbrLba is not { } ebrLba)
        {
            throw new InvalidOperationException("the EBR walk is over; check NextEbrLba before Accept");
        }

        NextEbrLba = null;
        var sectorBytes = checked(ebrLba * MbrLayout.SectorBytes);
        var ebr = MbrPartitionTable.Decode(ebrSector);
        if (!ebr.HasBootSignature)
        {
            _findings.Add(new Finding("MBR_EBR_NO_SIGNATURE", Severity.Error,
                $"EBR at LBA {ebrLba} has no 0x55AA signature; logical partitions after it are not listed",
                sectorBytes + MbrLayout.BootSignatureOffset, "BootSignature", $"0x{ebr.BootSignature:X4}", "0xAA55"));
            return;
        }

        MbrPartitionEntry? data = null;
        MbrPartitionEntry? link = null;
        foreach (var e in ebr.Entries.Where(e => !e.IsEmpty))
        {
            if (e.IsExtended && link is null)
            {
                link = e;
            }
            else if (!e.IsExtended && data is null)
            {
                data = e;
            }
            else
            {
                _findings.Add(new Finding("MBR_EBR_EXTRA_ENTRIES", Severity.Warning,
                    $"EBR at LBA {ebrLba}: entry {e.Index} is used but an EBR holds one partition and one link; ignored",
                    sectorBytes + MbrLayout.EntryOffset(e.Index), "Type", MbrPartitionTypes.Code(e.Type), "empty"));
            }
        }

        if (data is not null)
        {
            AddLogical(ebrLba, data, sectorBytes);
        }

        if (link is not null)
        {
            Schedule(checked(_extendedFirstLba + link.FirstLba), sectorBytes + MbrLayout.EntryOffset(link.Index) + MbrEntryLayout.StartingLbaOffset);
        }
    }

    private void AddLogical(long ebrLba, MbrPartitionEntry data, long sectorBytes)
    {
        var p = new MbrLogicalPartition(checked(FirstLogicalIndex + _partitions.Count), ebrLba, data);
        var at = sectorBytes + MbrLayout.EntryOffset(data.Index);
        if (data.FirstLba == 0)
        {
            _findings.Add(new Finding("MBR_LOGICAL_AT_EBR", Severity.Error,
                $"logical partition {p.Index} starts on its own EBR (LBA {ebrLba})",
                at + MbrEntryLayout.StartingLbaOffset, "FirstLba", "0", ">= 1"));
        }

        if (p.EndLbaExclusive > _diskSizeSectors)
        {
            _findings.Add(new Finding("MBR_LOGICAL_BEYOND_DISK", Severity.Error,
                $"logical partition {p.Index} ends at sector {p.EndLbaExclusive} but the disk has {_diskSizeSectors} sectors",
                at + MbrEntryLayout.SizeInLbaOffset, "SizeSectors", data.SizeSectors.ToString(), $"end <= {_diskSizeSectors}"));
        }
        else if (p.FirstLba < _extendedFirstLba || p.EndLbaExclusive > _extendedEndLbaExclusive)
        {
            _findings.Add(new Finding("MBR_LOGICAL_OUTSIDE_EXTENDED", Severity.Warning,
                $"logical partition {p.Index} (sectors {p.FirstLba}..{p.EndLbaExclusive - 1}) is outside the extended " +
                $"partition (sectors {_extendedFirstLba}..{_extendedEndLbaExclusive - 1})",
                at + MbrEntryLayout.StartingLbaOffset, "FirstLba", p.FirstLba.ToString(), $"{_extendedFirstLba}..{_extendedEndLbaExclusive - 1}"));
        }

        foreach (var q in _partitions.Where(q => q.FirstLba < p.EndLbaExclusive && p.FirstLba < q.EndLbaExclusive))
        {
            _findings.Add(new Finding("MBR_LOGICAL_OVERLAP", Severity.Error,
                $"logical partitions {q.Index} and {p.Index} overlap",
                at + MbrEntryLayout.StartingLbaOffset, "FirstLba", p.FirstLba.ToString(), $">= {q.EndLbaExclusive} or ending <= {q.FirstLba}"));
        }

        _partitions.Add(p);
    }

    private void Schedule(long ebrLba, long pointerOffsetBytes)
    {
        if (!_visited.Add(ebrLba))
        {
            _findings.Add(new Finding("MBR_EBR_LOOP", Severity.Error,
                $"EBR chain loops back to LBA {ebrLba}; the walk stops there",
                pointerOffsetBytes, "FirstLba", ebrLba.ToString(), "an EBR not yet visited"));
            return;
        }

        if (_hops >= MaxHops)
        {
            _findings.Add(new Finding("MBR_EBR_HOP_LIMIT", Severity.Error,
                $"EBR chain longer than {MaxHops} links; the walk stops at LBA {ebrLba}",
                pointerOffsetBytes, "FirstLba", ebrLba.ToString(), $"<= {MaxHops} EBRs"));
            return;
        }

        if (ebrLba >= _diskSizeSectors)
        {
            _findings.Add(new Finding("MBR_EBR_BEYOND_DISK", Severity.Error,
                $"EBR at LBA {ebrLba} is beyond the end of the disk ({_diskSizeSectors} sectors)",
                pointerOffsetBytes, "FirstLba", ebrLba.ToString(), $"< {_diskSizeSectors}"));
            return;
        }

        if (ebrLba < _extendedFirstLba || ebrLba >= _extendedEndLbaExclusive)
        {
            _findings.Add(new Finding("MBR_EBR_OUTSIDE_EXTENDED", Severity.Warning,
                $"EBR at LBA {ebrLba} is outside the extended partition (sectors {_extendedFirstLba}..{_extendedEndLbaExclusive - 1}); followed anyway",
                pointerOffsetBytes, "FirstLba", ebrLba.ToString(), $"{_extendedFirstLba}..{_extendedEndLbaExclusive - 1}"));
        }

        _hops++;
        NextEbrLba = ebrLba;
    }
}
