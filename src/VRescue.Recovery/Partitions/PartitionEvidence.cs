// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Formats.Gpt;
using VRescue.Formats.Lvm;
using VRescue.Storage;
using VRescue.Storage.Lvm;
using VRescue.Storage.Scanning;

namespace VRescue.Recovery.Partitions;

/// <summary>A GPT header found by the scan, with its entries when its array checked out.</summary>
internal sealed record GptCopyEvidence(FoundGptHeader Info, GptHeader Header, IReadOnlyList<GptPartitionEntry> Entries);

/// <summary>
/// Turns candidate sectors from <see cref="DiskSignatureScanner"/> into found objects: decodes each with the
/// Formats parsers, derives where the object starts (label sector_xl, mda_header.start, ext block group) and how
/// large it is from its own fields. Reads only small structures; every size from disk is bounded.
/// </summary>
internal static partial class PartitionEvidence
{
    private const int SectorBytes = 512;
    private const int SwapPageBytes = 4096;

    // Linux swap header (include/linux/swap.h union swap_header.info, from byte 1024 of page 0).
    private const int SwapVersion = 1024, SwapLastPage = 1028, SwapUuid = 1036, SwapLabel = 1052, SwapLabelLength = 16;

    // FAT BPB (Microsoft FAT specification): BytsPerSec, TotSec16, TotSec32, BkBootSec (FAT32), volume labels.
    private const int FatBytesPerSector = 0x0B, FatTotalSectors16 = 0x13, FatTotalSectors32 = 0x20, FatBackupBootSector = 0x32;
    private const int FatLabel16 = 0x2B, FatLabel32 = 0x47, FatLabelLength = 11, FatType16 = 0x36, FatType32 = 0x52;

    /// <summary>Found objects (unsorted, not yet checked for nesting) and GPT headers.</summary>
    public static (List<FoundPartition> Found, List<GptCopyEvidence> Gpt, List<Finding> Findings) Interpret(
        IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits)
    {
        var findings = new List<Finding>();
        var found = new List<FoundPartition>();
        found.AddRange(Pvs(disk, hits, findings));
        found.AddRange(ExtFilesystems(disk, hits));
        found.AddRange(Swaps(disk, hits));
        found.AddRange(FatFilesystems(disk, hits));
        var gpt = GptHeaders(disk, hits);
        return (found, gpt, findings);
    }

    private static IEnumerable<FoundPartition> Pvs(IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits, List<Finding> findings)
    {
        var starts = new SortedDictionary<long, List<string>>();
        void Add(long start, string evidence)
        {
            if (!starts.TryGetValue(start, out var list))
            {
                starts[start] = list = [];
            }

            list.Add(evidence);
        }

        var sector = new byte[SectorBytes];
        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.LvmLabel))
        {
            disk.ReadExactlyAt(hit.OffsetBytes, sector);
            var sectorXl = BinaryPrimitives.ReadUInt64LittleEndian(sector.AsSpan(LvmLabelLayout.SectorXlOffset));
            if (sectorXl >= LvmLabelLayout.ScanSectors || hit.OffsetBytes < (long)sectorXl * SectorBytes)
            {
                findings.Add(new Finding("PART_LABEL_BAD_SECTOR_XL", Severity.Info,
                    $"LABELONE at byte {hit.OffsetBytes} says it is in sector {sectorXl}, which no PV uses; ignored", hit.OffsetBytes,
                    "label_header.sector_xl", sectorXl.ToString(CultureInfo.InvariantCulture), "0..3"));
                continue;
            }

            var label = LvmLabel.Decode(sector, (long)sectorXl);
            var start = hit.OffsetBytes - ((long)sectorXl * SectorBytes);
            Add(start, label.IsAcceptedByLvm
                ? $"LVM label in sector {sectorXl} at byte {hit.OffsetBytes} (CRC valid), PV {label.PvUuidFormatted}"
                : $"LABELONE in sector {sectorXl} at byte {hit.OffsetBytes}, not accepted by LVM ({string.Join("; ", label.Validate().Where(f => f.Severity == Severity.Error).Select(f => f.Code))})");
        }

        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.LvmMdaHeader))
        {
            disk.ReadExactlyAt(hit.OffsetBytes, sector);
            var mda = LvmMdaHeader.Decode(sector, hit.OffsetBytes);
            var crcOk = mda.StoredChecksum == mda.ComputedChecksum;
            if (mda.StartBytes > (ulong)hit.OffsetBytes || mda.StartBytes % SectorBytes != 0 || mda.StartBytes < SectorBytes || (!crcOk && mda.StartBytes > 1 << 20))
            {
                continue; // A start the header cannot have: garbage, or a stale copy of text that looks like a header.
            }

            var start = hit.OffsetBytes - (long)mda.StartBytes;
            Add(start, $"mda header at byte {hit.OffsetBytes} with start {mda.StartBytes} ({(crcOk ? "CRC valid" : "CRC BAD")})");
        }

        // Guest disks inside an SR carry their own LVM; a start inside a PV already read is not read again.
        FoundPartition? outer = null;
        foreach (var (start, evidence) in starts)
        {
            if (outer?.EndBytes is { } end && start > outer.StartBytes && start < end)
            {
                yield return new FoundPartition("lvm-pv", start, null, null, "low", evidence,
                    NestedIn: $"lvm-pv at byte {outer.StartBytes}");
                continue;
            }

            var pv = ReadPv(disk, start, evidence);
            if (pv.SizeBytes is not null && pv.Confidence != "low")
            {
                outer = pv;
            }

            yield return pv;
        }
    }

    private static FoundPartition ReadPv(IBlockSource disk, long start, List<string> evidence)
    {
        var view = disk.Slice(start, disk.LengthBytes - start, $"{disk.Name}@{start}");
        var report = LvmPhysicalVolumeReader.Read(view);
        var label = report.Label is { IsAcceptedByLvm: true } l ? l : null;
        var vg = report.Metadata?.VolumeGroup;
        var textOk = report.Mdas.Any(m => m.TextCrcValid && m.Metadata?.VolumeGroup is not null);
        var metaPv = report.MetadataPv ?? (vg?.PhysicalVolumes.Count == 1 ? vg.PhysicalVolumes[0] : null);
        long? size = null;
        string? sizeSource = null;
        if (label is not null && label.DeviceSizeBytes is > 0 and <= long.MaxValue)
        {
            size = (long)label.DeviceSizeBytes;
            sizeSource = "pv_header.device_size";
        }
        else if (metaPv?.DevSizeSectors is > 0 and < long.MaxValue / SectorBytes)
        {
            size = metaPv.DevSizeSectors * SectorBytes;
            sizeSource = $"VG metadata {metaPv.Key} dev_size";
        }
        else if (metaPv is not null && vg is not null && metaPv.PeCount > 0)
        {
            size = checked(metaPv.PeStartBytes + (metaPv.PeCount * vg.ExtentSizeBytes));
            sizeSource = $"VG metadata {metaPv.Key} pe_start + pe_count x extent_size (a lower bound)";
        }

        if (vg is not null)
        {
            evidence.Add($"VG {vg.Name} seqno {vg.Seqno} in the metadata area ({(textOk ? "text CRC valid" : "text CRC BAD")})");
        }

        if (label is not null && metaPv?.DevSizeSectors is { } ds && ds * SectorBytes != (long)label.DeviceSizeBytes)
        {
            evidence.Add($"label device_size {label.DeviceSizeBytes} differs from metadata dev_size {ds * SectorBytes} (PV resized?)");
        }

        var hint = metaPv?.Device is { } device ? PartitionNumberFromDevice(device) : null;
        if (hint is not null)
        {
            evidence.Add($"the VG metadata last saw this PV as {metaPv!.Device} (partition {hint})");
        }

        var confidence = label is not null && textOk ? "high" : label is not null || textOk ? "medium" : "low";
        return new FoundPartition("lvm-pv", start, size, sizeSource, confidence, evidence,
            PvUuid: report.PvUuid ?? (metaPv is null ? null : LvmUuid.Format(LvmUuid.Strip(metaPv.Id))),
            VgName: vg?.Name, PartitionNumberHint: hint);
    }

    /// <summary>The partition number in a Linux device name LVM recorded: sda3, xvda3, nvme0n1p3, loop0p3, ...-part3.</summary>
    internal static int? PartitionNumberFromDevice(string device)
    {
        var m = DevicePartitionRegex().Match(device);
        return m.Success && int.TryParse(m.Groups["n"].Value, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 128 ? n : null;
    }

    [GeneratedRegex(@"^/dev/(?:(?:s|h|v|xv)d[a-z]+(?<n>\d+)|(?:nvme\d+n\d+|mmcblk\d+|loop\d+|md\d+)p(?<n>\d+)|disk/by-[a-z]+/.+-part(?<n>\d+))$")]
    private static partial Regex DevicePartitionRegex();

    private static IEnumerable<FoundPartition> ExtFilesystems(IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits)
    {
        var byStart = new SortedDictionary<long, (Ext4Superblock Sb, List<string> Evidence, bool Primary)>();
        var block = new byte[Ext4Superblock.SizeBytes];
        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.ExtSuperblock))
        {
            if (disk.ReadAt(hit.OffsetBytes, block) < block.Length)
            {
                continue;
            }

            var sb = Ext4Superblock.Decode(block);
            if (sb.CopyOffsetInFilesystemBytes is not { } offsetInFs)
            {
                continue;
            }

            var group = sb.BlockGroupNumber;
            var start = hit.OffsetBytes - offsetInFs;
            if (start < 0 || start % SectorBytes != 0)
            {
                continue;
            }

            var csum = sb.HasMetadataChecksum ? sb.StoredChecksum == sb.ComputedChecksum ? ", checksum valid" : ", checksum BAD" : "";
            var line = group == 0
                ? $"{sb.Kind.ToString().ToLowerInvariant()} superblock at byte {hit.OffsetBytes}{csum}"
                : $"backup superblock of block group {group} at byte {hit.OffsetBytes}{csum}";
            if (byStart.TryGetValue(start, out var e))
            {
                e.Evidence.Add(line);
                if (group == 0 && !e.Primary)
                {
                    byStart[start] = (sb, e.Evidence, true);
                }
            }
            else
            {
                byStart[start] = (sb, [line], group == 0);
            }
        }

        foreach (var (start, (sb, evidence, primary)) in byStart)
        {
            if (sb.Kind == ExtKind.JournalDevice)
            {
                continue;
            }

            var size = checked((long)Math.Min(sb.BlocksCount, long.MaxValue / (ulong)sb.BlockSizeBytes!.Value) * sb.BlockSizeBytes!.Value);
            var csumOk = !sb.HasMetadataChecksum || sb.StoredChecksum == sb.ComputedChecksum;
            var confidence = primary && csumOk ? (evidence.Count > 1 || sb.HasMetadataChecksum ? "high" : "medium") : "low";
            yield return new FoundPartition(sb.Kind.ToString().ToLowerInvariant(), start, size, "superblock blocks_count x block size",
                confidence, evidence, Label: sb.VolumeName, Uuid: sb.Uuid.ToString());
        }
    }

    private static IEnumerable<FoundPartition> Swaps(IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits)
    {
        var page = new byte[SwapPageBytes];
        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.LinuxSwap))
        {
            var start = hit.OffsetBytes + SectorBytes - SwapPageBytes;
            if (start < 0 || disk.ReadAt(start, page) < page.Length)
            {
                continue;
            }

            var version = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(SwapVersion));
            var lastPage = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(SwapLastPage));
            var isV2 = page.AsSpan(SwapPageBytes - 10).SequenceEqual("SWAPSPACE2"u8);
            long? size = isV2 && version == 1 && lastPage > 0 ? ((long)lastPage + 1) * SwapPageBytes : null;
            yield return new FoundPartition("swap", start, size, size is null ? null : "swap header last_page", isV2 && version == 1 ? "medium" : "low",
                [$"swap signature at byte {hit.OffsetBytes + SectorBytes - 10} (version {version}, last_page {lastPage})"],
                Label: CString(page.AsSpan(SwapLabel, SwapLabelLength)), Uuid: isV2 ? new Guid(page.AsSpan(SwapUuid, 16), bigEndian: true).ToString() : null);
        }
    }

    private static IEnumerable<FoundPartition> FatFilesystems(IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits)
    {
        var backups = new HashSet<long>();
        var sector = new byte[SectorBytes];
        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.FatBootSector))
        {
            if (backups.Contains(hit.OffsetBytes))
            {
                continue;
            }

            disk.ReadExactlyAt(hit.OffsetBytes, sector);
            var fat32 = sector.AsSpan(FatType32, 5).SequenceEqual("FAT32"u8);
            var bps = BinaryPrimitives.ReadUInt16LittleEndian(sector.AsSpan(FatBytesPerSector));
            var total = (long)BinaryPrimitives.ReadUInt16LittleEndian(sector.AsSpan(FatTotalSectors16));
            if (total == 0)
            {
                total = BinaryPrimitives.ReadUInt32LittleEndian(sector.AsSpan(FatTotalSectors32));
            }

            if (fat32)
            {
                var bk = BinaryPrimitives.ReadUInt16LittleEndian(sector.AsSpan(FatBackupBootSector));
                if (bk is > 0 and < 64)
                {
                    backups.Add(hit.OffsetBytes + (bk * (long)bps));
                }
            }

            var kind = fat32 ? "fat32" : Encoding.ASCII.GetString(sector, FatType16, 5).ToLowerInvariant().Trim();
            var label = CString(sector.AsSpan(fat32 ? FatLabel32 : FatLabel16, FatLabelLength)).Trim();
            yield return new FoundPartition(kind, hit.OffsetBytes, total > 0 ? total * bps : null, total > 0 ? "boot sector total sectors" : null,
                total > 0 ? "medium" : "low", [$"{kind.ToUpperInvariant()} boot sector at byte {hit.OffsetBytes}"], Label: label);
        }
    }

    private static List<GptCopyEvidence> GptHeaders(IBlockSource disk, IReadOnlyList<DiskSignatureHit> hits)
    {
        var result = new List<GptCopyEvidence>();
        var diskSectors = disk.LengthBytes / SectorBytes;
        var sector = new byte[SectorBytes];
        foreach (var hit in hits.Where(h => h.Kind == DiskSignatureKind.GptHeader).Take(64))
        {
            disk.ReadExactlyAt(hit.OffsetBytes, sector);
            var lba = hit.OffsetBytes / SectorBytes;
            var header = GptHeader.Decode(sector);
            var role = lba == 1 ? "primary" : lba == diskSectors - 1 ? "backup" : "other";
            // A header left at an old disk end is judged against the disk it was written for.
            var judgedSectors = role == "other" && header.CurrentLba == (ulong)lba && header.BackupLba == 1 ? lba + 1 : diskSectors;
            var headerValid = !header.Validate(lba, judgedSectors).Any(f => f.Severity == Severity.Error);
            IReadOnlyList<GptPartitionEntry> entries = [];
            var entriesValid = false;
            if (headerValid && header.EntriesRange is { } range && range.LengthBytes > 0 && range.OffsetBytes <= disk.LengthBytes - range.LengthBytes)
            {
                var array = disk.ReadBytes(range.OffsetBytes, range.LengthBytes);
                if (header.ValidateEntryArrayCrc(array) is null)
                {
                    entriesValid = true;
                    entries = GptPartitionEntry.DecodeArray(array, header.NumberOfPartitionEntries, header.SizeOfPartitionEntry);
                }
            }

            result.Add(new GptCopyEvidence(new FoundGptHeader(lba, role, headerValid, entriesValid, header.DiskGuid, entries.Count), header, entries));
        }

        return result;
    }

    private static string CString(ReadOnlySpan<byte> b)
    {
        var n = b.IndexOf((byte)0);
        return Encoding.Latin1.GetString(n < 0 ? b : b[..n]);
    }
}
