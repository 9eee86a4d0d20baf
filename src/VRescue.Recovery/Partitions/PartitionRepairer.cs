// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Formats.Mbr;
using VRescue.Storage;
using VRescue.Storage.Scanning;

namespace VRescue.Recovery.Partitions;

/// <summary>One range the repair wrote.</summary>
/// <param name="OffsetBytes">Absolute offset in the target.</param>
/// <param name="LengthBytes">Bytes written.</param>
/// <param name="What">"protective MBR", "primary GPT header", ...</param>
public sealed record PartitionTableWrite(long OffsetBytes, int LengthBytes, string What);

/// <summary>What `vrescue partitions repair` did.</summary>
/// <param name="Source">Evidence, opened read-only.</param>
/// <param name="Target">The copy written.</param>
/// <param name="TargetCreated">True when VRescue made the sparse copy first.</param>
/// <param name="CopiedBytes">Non-zero bytes copied into a new target.</param>
/// <param name="Table">"gpt" or "mbr".</param>
/// <param name="Partitions">The entries written.</param>
/// <param name="Writes">Every range written into the target; nothing else changed.</param>
/// <param name="Scan">The scan the table came from.</param>
public sealed record PartitionRepairResult(
    string Source,
    string Target,
    bool TargetCreated,
    long CopiedBytes,
    string Table,
    IReadOnlyList<ProposedPartition> Partitions,
    IReadOnlyList<PartitionTableWrite> Writes,
    PartitionScanReport Scan);

/// <summary>
/// `vrescue partitions repair`: writes the proposed table into a target that is not the source. GPT: protective
/// MBR (boot code kept), primary and backup headers and entry arrays with CRCs (UEFI 2.10 section 5.3). MBR: the
/// four entries and 0x55AA in sector 0 (boot code and disk signature kept). Only those sectors change.
/// </summary>
public static class PartitionRepairer
{
    private const int SectorBytes = 512;
    private const int GptEntryCount = 128;
    private const int GptEntryBytes = 128;
    private const int GptArrayBytes = GptEntryCount * GptEntryBytes;
    private const int CompareBytes = 8192;

    /// <summary>
    /// Scans <paramref name="sourcePath"/>, then writes the proposed table (<paramref name="table"/> "gpt" or "mbr",
    /// or null for the proposal's kind) into <paramref name="targetPath"/>, creating a sparse copy when it does not exist.
    /// Throws <see cref="PartitionRepairRefusedException"/> when it will not write.
    /// </summary>
    public static PartitionRepairResult Repair(string sourcePath, string targetPath, string? table = null,
        IProgress<DiskScanProgress>? progress = null, CancellationToken cancel = default)
    {
        RepairTarget.EnsureNotSource(sourcePath, targetPath);
        using var source = FileBlockSource.Open(sourcePath);
        var report = PartitionScanner.Scan(source, progress, cancel);
        var kind = table ?? report.ProposedTable;
        if (report.Proposed.Count == 0 || kind == "none")
        {
            throw new PartitionRepairRefusedException("REPAIR_NOTHING_PROPOSED",
                report.ProposalSource == "none-needed"
                    ? "the PV starts at byte 0 (whole-disk SR): there is no partition table to repair"
                    : "no table can be proposed: no LVM PV was found on the disk");
        }

        var parts = Arrange(report.Proposed, kind, source.LengthBytes);
        var created = !Path.Exists(targetPath);
        long copied = 0;
        if (created)
        {
            copied = RepairTarget.SparseCopy(source, targetPath, cancel);
        }

        using var handle = File.OpenHandle(targetPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        using (var check = FileBlockSource.Open(targetPath))
        {
            if (!created)
            {
                EnsureCopyOf(source, check, parts);
            }

            var sector0 = check.ReadBytes(0, SectorBytes);
            var lastLba = (source.LengthBytes / SectorBytes) - 1;
            var stale = new[] { 1L, lastLba }.Where(lba => check.ReadBytes(lba * SectorBytes, SectorBytes).AsSpan().StartsWith(GptHeader.SignatureMagic)).ToList();
            var writes = BuildWrites(kind, parts, source.LengthBytes, sector0, report.DiskGuid, stale);
            foreach (var (write, bytes) in writes)
            {
                RandomAccess.Write(handle, bytes, write.OffsetBytes);
            }

            RandomAccess.FlushToDisk(handle);
            return new PartitionRepairResult(source.Name, Path.GetFullPath(targetPath), created, copied, kind, parts,
                writes.Select(w => w.Write).ToList(), report);
        }
    }

    /// <summary>Checks the proposed entries fit the table kind; MBR entries are renumbered 1..4 in order when needed.</summary>
    internal static List<ProposedPartition> Arrange(IReadOnlyList<ProposedPartition> proposed, string kind, long diskBytes)
    {
        var diskSectors = diskBytes / SectorBytes;
        if (kind == "gpt")
        {
            foreach (var p in proposed)
            {
                if (p.Index is < 1 or > GptEntryCount || p.FirstLba < PartitionScanner.GptFirstUsableLba ||
                    p.LastLba >= diskSectors - PartitionScanner.GptTailSectors || p.LastLba < p.FirstLba)
                {
                    throw new PartitionRepairRefusedException("REPAIR_GPT_NO_ROOM",
                        $"partition {p.Index} (sectors {p.FirstLba}..{p.LastLba}) does not fit a GPT's usable range " +
                        $"{PartitionScanner.GptFirstUsableLba}..{diskSectors - PartitionScanner.GptTailSectors - 1}: writing a GPT would overwrite its data; use --table mbr");
                }
            }

            return proposed.OrderBy(p => p.Index).ToList();
        }

        if (kind != "mbr")
        {
            throw new ArgumentException($"table must be gpt or mbr, got {kind}", nameof(kind));
        }

        if (proposed.Count > MbrLayout.EntryCount)
        {
            throw new PartitionRepairRefusedException("REPAIR_MBR_LIMITS",
                $"{proposed.Count} partitions do not fit the 4 primary entries of an MBR; use --table gpt");
        }

        var ordered = proposed.OrderBy(p => p.Index).ToList();
        var renumber = ordered.Any(p => p.Index > MbrLayout.EntryCount);
        var result = ordered.Select((p, i) => renumber ? p with { Index = i + 1 } : p).ToList();
        foreach (var p in result)
        {
            if (p.FirstLba < 1 || p.LastLba >= diskSectors || p.LastLba >= uint.MaxValue || p.LastLba - p.FirstLba + 1 > uint.MaxValue)
            {
                throw new PartitionRepairRefusedException("REPAIR_MBR_LIMITS",
                    $"partition {p.Index} (sectors {p.FirstLba}..{p.LastLba}) cannot be described by an MBR entry (32-bit sectors, inside the disk); use --table gpt");
            }
        }

        return result;
    }

    private static void EnsureCopyOf(IBlockSource source, IBlockSource target, List<ProposedPartition> parts)
    {
        if (target.LengthBytes != source.LengthBytes)
        {
            throw new PartitionRepairRefusedException("REPAIR_TARGET_SIZE",
                $"{target.Name} is {target.LengthBytes} bytes, the source {source.LengthBytes}: it is not a copy of the source");
        }

        foreach (var p in parts)
        {
            var n = (int)Math.Min(CompareBytes, p.SizeBytes);
            if (!source.ReadBytes(p.StartBytes, n).AsSpan().SequenceEqual(target.ReadBytes(p.StartBytes, n)))
            {
                throw new PartitionRepairRefusedException("REPAIR_TARGET_NOT_A_COPY",
                    $"{target.Name} differs from the source at the start of partition {p.Index} (byte {p.StartBytes}): it is not a copy of the source");
            }
        }
    }

    /// <summary>The sectors to write and their bytes. Pure: <paramref name="sector0"/> is the target's current sector 0.</summary>
    internal static List<(PartitionTableWrite Write, byte[] Bytes)> BuildWrites(string kind, IReadOnlyList<ProposedPartition> parts,
        long diskBytes, ReadOnlySpan<byte> sector0, Guid? diskGuid, IReadOnlyList<long> staleGptLbas)
    {
        var diskSectors = diskBytes / SectorBytes;
        var writes = new List<(PartitionTableWrite, byte[])>();
        var mbr = sector0[..SectorBytes].ToArray();
        var oldMbr = MbrPartitionTable.Decode(mbr);
        mbr.AsSpan(MbrLayout.DiskSignatureOffset + MbrLayout.DiskSignatureLength, 2).Clear();
        if (kind == "gpt")
        {
            // UEFI 2.10 table 5-4: one 0xEE entry from LBA 1 over the rest of the disk (capped at 0xFFFFFFFF).
            var protective = new MbrPartitionEntry(1, 0, MbrPartitionTypes.GptProtective, 1,
                (uint)Math.Min(diskSectors - 1, uint.MaxValue), Chs(1), Chs(diskSectors - 1));
            new MbrPartitionTable(oldMbr.DiskSignature, MbrLayout.BootSignatureValue, [protective]).Encode(mbr);
            writes.Add((new PartitionTableWrite(0, SectorBytes, "protective MBR"), mbr));

            var array = new byte[GptArrayBytes];
            GptPartitionEntry.EncodeArray(parts.Select(p => new GptPartitionEntry(p.Index, p.GptTypeGuid, p.UniqueGuid,
                (ulong)p.FirstLba, (ulong)p.LastLba, p.Attributes, p.Name.Length > GptEntryLayout.PartitionNameMaxChars ? p.Name[..GptEntryLayout.PartitionNameMaxChars] : p.Name)), array, GptEntryBytes);
            var backupArrayLba = diskSectors - 1 - (GptArrayBytes / SectorBytes);
            var header = new GptHeader
            {
                CurrentLba = 1,
                BackupLba = (ulong)(diskSectors - 1),
                FirstUsableLba = (ulong)PartitionScanner.GptFirstUsableLba,
                LastUsableLba = (ulong)(diskSectors - PartitionScanner.GptTailSectors - 1),
                DiskGuid = diskGuid is { } g && g != Guid.Empty ? g : Guid.NewGuid(),
                PartitionEntriesLba = 2,
                NumberOfPartitionEntries = GptEntryCount,
                SizeOfPartitionEntry = GptEntryBytes,
                PartitionEntryArrayCrc32 = Crc32.Ieee(array),
            };
            var primary = new byte[SectorBytes];
            header.Encode(primary);
            var backup = new byte[SectorBytes];
            header.AsBackup((ulong)backupArrayLba).Encode(backup);
            writes.Add((new PartitionTableWrite(SectorBytes, SectorBytes, "primary GPT header"), primary));
            writes.Add((new PartitionTableWrite(2 * SectorBytes, GptArrayBytes, "primary GPT entries"), array));
            writes.Add((new PartitionTableWrite(backupArrayLba * SectorBytes, GptArrayBytes, "backup GPT entries"), array));
            writes.Add((new PartitionTableWrite((diskSectors - 1) * SectorBytes, SectorBytes, "backup GPT header"), backup));
            return writes;
        }

        var signature = oldMbr.DiskSignature != 0 ? oldMbr.DiskSignature : (uint)RandomNumberGenerator.GetInt32(1, int.MaxValue);
        var entries = parts.Select(p => new MbrPartitionEntry(p.Index, 0, Convert.ToByte(p.MbrType[2..], 16), (uint)p.FirstLba,
            (uint)(p.LastLba - p.FirstLba + 1), Chs(p.FirstLba), Chs(p.LastLba))).ToList();
        new MbrPartitionTable(signature, MbrLayout.BootSignatureValue, entries).Encode(mbr);
        writes.Add((new PartitionTableWrite(0, SectorBytes, "MBR"), mbr));
        foreach (var lba in staleGptLbas)
        {
            // A GPT header next to a real MBR makes gdisk and parted offer the stale GPT; it is a table sector, so clear it.
            writes.Add((new PartitionTableWrite(lba * SectorBytes, SectorBytes, $"stale GPT header at LBA {lba} cleared"), new byte[SectorBytes]));
        }

        return writes;
    }

    /// <summary>LBA to the 24-bit CHS field fdisk writes (255 heads, 63 sectors; 1023/254/63 beyond 8 GiB).</summary>
    internal static int Chs(long lba)
    {
        const int heads = 255, sectors = 63;
        var cylinder = lba / (heads * sectors);
        if (cylinder > 1023)
        {
            return 0xFE | 0xFF << 8 | 0xFF << 16;
        }

        var head = (int)(lba / sectors % heads);
        var sector = (int)(lba % sectors) + 1;
        return head | (sector | (int)((cylinder >> 8) << 6)) << 8 | (int)(cylinder & 0xFF) << 16;
    }
}
