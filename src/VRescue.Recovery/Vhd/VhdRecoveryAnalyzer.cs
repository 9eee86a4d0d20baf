// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Reads a possibly damaged VHD the tapdisk way (<see cref="VhdImage"/>), then decides how to get every block back:
/// footer from its copy or rebuilt from header and BAT, header rebuilt around a BAT found by structure, lost BAT
/// entries replaced by blocks found on the XenServer allocation grid (research §2.5, §2.8: bitmap sector at
/// (entry + 1) % 8 == 0, 4104 sectors per block) placed by elimination or by ext superblock backups. Read-only.
/// </summary>
public static class VhdRecoveryAnalyzer
{
    /// <summary>Orphan blocks listed at most (the scan itself is bounded by the source size).</summary>
    public const int MaxOrphans = 4096;

    /// <summary>The BAT entry count SM preallocates (2 TiB of 2 MiB blocks); tells "BAT sized for 2 TiB" from "BAT sized to the disk".</summary>
    public const uint SmMaxTableEntries = 0x100000;

    public static VhdRecoveryPlan Analyze(IBlockSource source)
    {
        var image = VhdImage.Open(source);
        var findings = new List<Finding>(image.Findings);
        var repairs = new List<string>();
        var length = source.LengthBytes;
        var stored = Summarise(image);
        findings.AddRange(EmptyLocatorFindings(image));

        // 1. Footer: the one VhdImage chose, if sane; otherwise rebuilt later from header + BAT.
        var footer = image.Footer;
        if (footer is not null && !IsFooterUsable(footer))
        {
            footer = null;
        }

        if (footer is not null)
        {
            NoteFooterRepairs(image, footer, repairs);
        }

        if (footer is { DiskType: VhdDiskType.Fixed })
        {
            return FixedPlan(source, footer, findings, repairs, stored);
        }

        // 2. Dynamic header: stored if its cookie and fields are sane, else rebuilt around a BAT found by structure.
        var headerOffset = footer is not null ? (long)footer.DataOffsetBytes : VhdFooterLayout.Size;
        var header = ReadHeader(source, headerOffset, repairs);
        if (header is null)
        {
            var bat = VhdBatLocator.Find(source);
            if (bat is null)
            {
                if (footer is null)
                {
                    findings.Add(new Finding("VHD_NOT_FOUND", Severity.Error,
                        "no footer, no dynamic header and no BAT-like structure: this does not look like a VHD", 0));
                    return new VhdRecoveryPlan(source, null, null, new Dictionary<long, VhdBlockPlacement>(), [], [], findings, repairs, stored);
                }

                findings.Add(new Finding("VHD_BAT_NOT_FOUND", Severity.Error,
                    "the dynamic header is lost and no BAT was found by structure: block positions are unknown", headerOffset));
                var all = footer.CurrentSizeBytes <= VhdFooter.MaxCurrentSizeBytes ? (long)footer.CurrentSizeBytes : 0;
                return new VhdRecoveryPlan(source, footer, null, new Dictionary<long, VhdBlockPlacement>(), [],
                    all > 0 ? [new VhdBadRange(0, all, "BAT not found")] : [], findings, repairs, stored);
            }

            header = new VhdDynamicHeader
            {
                TableOffsetBytes = (ulong)bat.TableOffsetBytes,
                MaxTableEntries = bat.MaxTableEntries,
                BlockSizeBytes = VhdDynamicHeader.DefaultBlockSizeBytes,
            };
            findings.Add(new Finding("VHD_HEADER_REBUILT", Severity.Warning,
                $"dynamic header lost; BAT found by structure at {Hex.Offset(bat.TableOffsetBytes)} ({bat.MaxTableEntries} entries, {bat.AllocatedEntries} allocated{(bat.BatmapHeaderOffsetBytes is { } bm ? $", batmap header at {Hex.Offset(bm)}" : "")})",
                headerOffset, "table_offset", null, Hex.Offset(bat.TableOffsetBytes)));
            repairs.Add($"header: rebuilt around the BAT found at {Hex.Offset(bat.TableOffsetBytes)} (2 MiB blocks, {bat.MaxTableEntries} entries)");
            if (footer is { DiskType: VhdDiskType.Differencing })
            {
                findings.Add(new Finding("VHD_PARENT_LOST", Severity.Error,
                    "differencing disk whose header is lost: the parent uuid and locators are gone; the output holds this layer only", headerOffset));
            }
        }

        // 3. BAT entries: which are trustworthy, which are lost, and what lies on the grid unreferenced.
        var dataEnd = length - VhdFooterLayout.Size;
        var spanSectors = checked(header.BitmapSizeSectors + header.BlockSizeBytes / 512);
        var entryCount = EntriesToRead(footer, header, length);
        var entries = ReadEntries(source, header, entryCount, findings);
        var metadata = MetadataRanges(source, header, headerOffset);
        var metadataEnd = metadata.Max(m => m.EndBytes);

        NoteTruncation(image, entries, metadataEnd, spanSectors, length, findings, repairs);

        var placements = new SortedDictionary<long, VhdBlockPlacement>();
        var lost = new SortedDictionary<long, string>();
        var candidates = new List<(long Index, long Start)>();
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            if (e == VhdBat.Unallocated)
            {
                continue;
            }

            var start = e * 512L;
            var at = (long)header.TableOffsetBytes + i * 4L;
            if (metadata.FirstOrDefault(m => start < m.EndBytes && m.OffsetBytes < start + spanSectors * 512) is { What: not null } m)
            {
                lost[i] = $"BAT entry points into the {m.What}";
                findings.Add(new Finding("VHD_BAT_ENTRY_LOST", Severity.Error, $"block {i}: entry {e} points into the {m.What}", at, $"bat[{i}]", e.ToString(), "a block after the metadata"));
            }
            else if (start >= dataEnd)
            {
                lost[i] = "BAT entry points past the end of the source";
                findings.Add(new Finding("VHD_BAT_ENTRY_LOST", Severity.Error, $"block {i}: entry {e} points past the end of the source", at, $"bat[{i}]", e.ToString(), $"< {dataEnd / 512}"));
            }
            else
            {
                candidates.Add((i, start));
            }
        }

        // Overlapping entries cannot both be right; neither is trusted (their blocks become orphans).
        candidates.Sort((a, b) => a.Start.CompareTo(b.Start));
        var overlapping = new HashSet<long>();
        for (var k = 1; k < candidates.Count; k++)
        {
            if (candidates[k].Start < candidates[k - 1].Start + spanSectors * 512)
            {
                overlapping.Add(candidates[k].Index);
                overlapping.Add(candidates[k - 1].Index);
            }
        }

        foreach (var (index, start) in candidates)
        {
            if (overlapping.Contains(index))
            {
                lost[index] = "BAT entry overlaps another block";
                findings.Add(new Finding("VHD_BAT_ENTRY_LOST", Severity.Error, $"block {index}: entry {start / 512} overlaps another block; neither entry is trusted",
                    (long)header.TableOffsetBytes + index * 4, $"bat[{index}]", (start / 512).ToString()));
            }
            else
            {
                placements[index] = new VhdBlockPlacement(index, start, VhdBlockProvenance.Bat);
            }
        }

        var orphans = VhdGridScanner.Scan(source, header, placements.Values.Select(p => p.BitmapOffsetBytes).ToList(), metadataEnd, dataEnd, spanSectors, findings);

        // 4. Place orphans: ext superblock backups first (they name their own position), then elimination.
        var provisionalSize = footer is not null ? (long)Math.Min(footer.CurrentSizeBytes, VhdFooter.MaxCurrentSizeBytes)
            : (Math.Max(entries.Length, 1) * (long)header.BlockSizeBytes);
        if (orphans.Count > 0)
        {
            var blocks = (provisionalSize + header.BlockSizeBytes - 1) / header.BlockSizeBytes;
            bool IsOpen(long block) => block >= 0 && block < blocks && !placements.ContainsKey(block);
            var draft = new VhdRecoveryPlan(source, footer ?? DraftFooter(provisionalSize), header, placements, orphans, [], findings, repairs, stored);
            foreach (var (orphan, block, evidence) in ExtBlockPlacer.Place(draft, orphans, IsOpen))
            {
                placements[block] = new VhdBlockPlacement(block, orphan.BitmapOffsetBytes, VhdBlockProvenance.Inferred, evidence);
                lost.Remove(block);
                orphans = orphans.Where(o => o != orphan).ToList();
                findings.Add(new Finding("VHD_BLOCK_INFERRED", Severity.Warning,
                    $"block {block} placed by guest filesystem structure ({evidence}); its BAT entry was lost", orphan.BitmapOffsetBytes));
                repairs.Add($"BAT: block {block} placed at sector {orphan.BitmapOffsetBytes / 512} by inference ({evidence})");
            }

            if (orphans.Count == 1 && lost.Count == 1)
            {
                var block = lost.Keys.First();
                placements[block] = new VhdBlockPlacement(block, orphans[0].BitmapOffsetBytes, VhdBlockProvenance.Elimination,
                    "the only block on the grid no entry references, for the only lost entry");
                repairs.Add($"BAT: block {block} placed at sector {orphans[0].BitmapOffsetBytes / 512} by elimination");
                lost.Clear();
                orphans = [];
            }

            foreach (var o in orphans)
            {
                findings.Add(new Finding("VHD_BLOCK_ORPHAN", Severity.Error,
                    $"a block with {o.SectorsPresent} sectors present sits on the allocation grid but no BAT entry references it and its guest position cannot be proven; it is not in the output",
                    o.BitmapOffsetBytes));
            }
        }

        foreach (var p in placements.Values.Where(p => p.Provenance == VhdBlockProvenance.Bat && lost.ContainsKey(p.GuestBlock)))
        {
            lost.Remove(p.GuestBlock);
        }

        // 5. Footer rebuilt from header + BAT when both copies are gone.
        if (footer is null)
        {
            var size = VhdSizeInference.Infer(source, header, placements, entries.Length, findings);
            var hasBatmap = VhdBatmapPresent(source, header);
            footer = new VhdFooter
            {
                DiskType = header.ParentUuid != Guid.Empty ? VhdDiskType.Differencing : VhdDiskType.Dynamic,
                DataOffsetBytes = (ulong)headerOffset,
                CreatorApplication = hasBatmap ? "tap\0" : "vrsc",
                CreatorVersion = hasBatmap ? 0x00010003u : 0x00010000u,
                TimestampSeconds = (uint)Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - VhdFooter.VhdEpochUnixSeconds),
                Uuid = Guid.NewGuid(),
            }.WithSize(size);
            findings.Add(new Finding("VHD_FOOTER_REBUILT", Severity.Warning,
                $"both footers are lost; rebuilt from the header and BAT: virtual size {size} bytes, geometry {footer.GeometryCylinders}/{footer.GeometryHeads}/{footer.GeometrySectorsPerTrack}, new uuid {footer.Uuid}",
                length - VhdFooterLayout.Size, "curr_size", null, size.ToString()));
            repairs.Add($"footer: rebuilt from header and BAT (virtual size {size} bytes, new uuid {footer.Uuid}; a child VHD naming the old uuid must be relinked)");
        }

        // 6. Batmap against bitmaps, and the 4 KiB alignment tapdisk allocates with.
        VhdBlockConsistency.Check(source, image, footer, header, placements.Values, findings, repairs);

        // 7. What is lost: lost entries, blocks cut off by the end of the source.
        var bad = new List<VhdBadRange>();
        var size2 = (long)footer.CurrentSizeBytes;
        foreach (var (block, why) in lost)
        {
            var from = block * header.BlockSizeBytes;
            if (from < size2)
            {
                bad.Add(new VhdBadRange(from, Math.Min(header.BlockSizeBytes, size2 - from), why));
            }
        }

        foreach (var p in placements.Values)
        {
            AddTruncatedSectors(source, header, p, dataEnd, size2, bad);
        }

        if (placements.Keys.Any(k => k * header.BlockSizeBytes >= size2))
        {
            findings.Add(new Finding("VHD_BAT_BEYOND_SIZE", Severity.Warning, "blocks are allocated beyond the virtual size; they are not part of the guest disk",
                (long)header.TableOffsetBytes));
        }

        if (!placements.Values.All(p => p.Provenance == VhdBlockProvenance.Bat) || lost.Count > 0 || repairs.Any(r => r.StartsWith("header", StringComparison.Ordinal)))
        {
            repairs.Add("BAT: rewritten from the placements above");
        }

        return new VhdRecoveryPlan(source, footer, header, placements, orphans, Merge(bad), findings, repairs, stored);
    }

    /// <summary>
    /// A file cut short loses its end footer and the end of its last blocks. Without a good end footer, the end the BAT
    /// implies (the furthest block: bitmap + data, 4104 sectors for 2 MiB blocks, then the 512-byte footer; VHD spec
    /// "Dynamic Disk Header", libvhd vhd_end_of_data) beyond the source length names the truncation. The sector now last
    /// is block data, so "end footer zeroed / invalid" would mislead: those findings are replaced by VHD_TRUNCATED.
    /// Entries into the metadata, or further out than every allocated block laid end to end could reach, are not
    /// evidence of the file's end (they are reported as lost entries).
    /// </summary>
    private static void NoteTruncation(VhdImage image, uint[] entries, long metadataEnd, long spanSectors, long length, List<Finding> findings, List<string> repairs)
    {
        if (image.Info.FooterSource == VhdFooterSource.End)
        {
            return;
        }

        var allocated = entries.Count(e => e != VhdBat.Unallocated);
        var reach = length + checked(allocated * spanSectors * 512);
        long impliedEnd = 0;
        foreach (var e in entries)
        {
            var start = e * 512L;
            if (e != VhdBat.Unallocated && start >= metadataEnd && start < reach)
            {
                impliedEnd = Math.Max(impliedEnd, start + spanSectors * 512 + VhdFooterLayout.Size);
            }
        }

        if (impliedEnd <= length)
        {
            return;
        }

        var last = length - VhdFooterLayout.Size;
        var replaced = findings.RemoveAll(f => f.Code is "VHD_FOOTER_ZEROED" or "VHD_FOOTER_END_INVALID" && f.OffsetBytes == last) > 0;
        findings.Add(new Finding("VHD_TRUNCATED", Severity.Error,
            $"the source is {length} bytes but its BAT places block data up to {impliedEnd - VhdFooterLayout.Size} and the footer after it: {impliedEnd - length} bytes are cut off the end, with the end footer{(replaced ? $" (the last sector, at 0x{last:X}, is block data, not a footer)" : "")}",
            length, "file length", length.ToString(System.Globalization.CultureInfo.InvariantCulture), impliedEnd.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var i = repairs.FindIndex(r => r.StartsWith("footer: end footer", StringComparison.Ordinal));
        if (i >= 0)
        {
            repairs[i] = $"footer: end footer cut off with the end of the file ({impliedEnd - length} bytes); rewritten from the copy at offset 0";
        }
    }

    private static VhdFooter DraftFooter(long size) => new() { DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = (ulong)size, DataOffsetBytes = 512 };

    private static bool IsFooterUsable(VhdFooter footer) =>
        footer.HasValidCookie
        && footer.DiskType is VhdDiskType.Fixed or VhdDiskType.Dynamic or VhdDiskType.Differencing
        && footer.CurrentSizeBytes % 512 == 0 && footer.CurrentSizeBytes <= VhdFooter.MaxCurrentSizeBytes
        && (!footer.HasDynamicHeader || (footer.DataOffsetBytes % 512 == 0 && footer.DataOffsetBytes < 1UL << 40));

    private static void NoteFooterRepairs(VhdImage image, VhdFooter footer, List<string> repairs)
    {
        var codes = image.Findings.Select(f => f.Code).ToHashSet();
        if (image.Info.FooterSource == VhdFooterSource.Copy)
        {
            var why = codes.Contains("VHD_FOOTER_KILLED") ? "killed with 0xC7 (open read-write at crash)"
                : codes.Contains("VHD_FOOTER_ZEROED") ? "zeroed" : "invalid";
            repairs.Add($"footer: end footer {why}; rewritten from the copy at offset 0");
        }
        else if (codes.Contains("VHD_FOOTER_COPY_INVALID"))
        {
            repairs.Add("footer: copy at offset 0 invalid; rewritten from the end footer");
        }

        if (!footer.IsChecksumValid)
        {
            repairs.Add("footer: checksum recomputed");
        }
    }

    private static VhdDynamicHeader? ReadHeader(IBlockSource source, long offset, List<string> repairs)
    {
        if (offset < 0 || offset > source.LengthBytes - VhdDynamicHeaderLayout.Size)
        {
            return null;
        }

        var header = VhdDynamicHeader.Decode(source.ReadBytes(offset, VhdDynamicHeaderLayout.Size));
        if (header.Cookie != "cxsparse" || !header.IsBlockSizeUsable || header.TableOffsetBytes % 512 != 0
            || header.TableOffsetBytes >= (ulong)source.LengthBytes || header.TableOffsetBytes < VhdFooterLayout.Size)
        {
            return null;
        }

        if (!header.IsChecksumValid)
        {
            repairs.Add("header: checksum recomputed (fields as stored)");
        }

        return header;
    }

    private static long EntriesToRead(VhdFooter? footer, VhdDynamicHeader header, long length)
    {
        var max = Math.Min((long)header.MaxTableEntries, VhdBat.MaxEntries);
        if (footer is not null)
        {
            max = Math.Min(max, header.UsedTableEntries(footer.CurrentSizeBytes));
        }

        return Math.Clamp((length - (long)header.TableOffsetBytes) / 4, 0, max);
    }

    private static uint[] ReadEntries(IBlockSource source, VhdDynamicHeader header, long count, List<Finding> findings)
    {
        var bytes = new byte[checked((int)(count * 4))];
        source.ReadZeroFilled((long)header.TableOffsetBytes, bytes);
        var entries = new uint[count];
        for (var i = 0; i < count; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(i * 4));
        }

        return entries;
    }

    private static List<VhdMetadataRange> MetadataRanges(IBlockSource source, VhdDynamicHeader header, long headerOffset)
    {
        var length = source.LengthBytes;
        var ranges = new List<VhdMetadataRange>
        {
            new("footer copy", 0, VhdFooterLayout.Size),
            new("dynamic header", headerOffset, VhdDynamicHeaderLayout.Size),
            new("BAT", (long)header.TableOffsetBytes, Math.Min(header.TableSizeBytes, Math.Max(0, length - (long)header.TableOffsetBytes))),
        };
        var batmapAt = VhdBatmapHeader.HeaderOffsetBytes(header);
        if (batmapAt <= length - VhdBatmapHeaderLayout.Size)
        {
            var bm = VhdBatmapHeader.Decode(source.ReadBytes(batmapAt, VhdBatmapHeaderLayout.Size));
            if (bm.HasValidCookie && bm.BatmapOffsetBytes < (ulong)length)
            {
                ranges.Add(new("batmap header", batmapAt, VhdBatmapHeaderLayout.Size));
                ranges.Add(new("batmap", (long)bm.BatmapOffsetBytes, Math.Min(bm.BatmapSizeBytes, length)));
            }
        }

        foreach (var loc in header.ParentLocators.Where(l => l.IsUsed && l.DataOffsetBytes < (ulong)length))
        {
            ranges.Add(new("parent locator", (long)loc.DataOffsetBytes, Math.Min(Math.Max(loc.DataLength, loc.DataSpaceBytes), VhdParentLocator.MaxDataLengthBytes)));
        }

        return ranges;
    }

    private static bool VhdBatmapPresent(IBlockSource source, VhdDynamicHeader header)
    {
        var at = VhdBatmapHeader.HeaderOffsetBytes(header);
        return at <= source.LengthBytes - 8 && source.ReadBytes(at, 8).AsSpan().SequenceEqual(VhdBatmapHeader.CookieMagic);
    }

    private static void AddTruncatedSectors(IBlockSource source, VhdDynamicHeader header, VhdBlockPlacement p, long dataEnd, long size, List<VhdBadRange> bad)
    {
        var dataStart = p.BitmapOffsetBytes + header.BitmapSizeSectors * 512;
        if (dataStart + header.BlockSizeBytes <= dataEnd)
        {
            return;
        }

        var bitmap = new byte[header.BitmapSizeSectors * 512];
        source.ReadZeroFilled(p.BitmapOffsetBytes, bitmap);
        var sectors = header.BlockSizeBytes / 512;
        for (long s = 0; s < sectors; s++)
        {
            var guest = p.GuestBlock * header.BlockSizeBytes + s * 512;
            if (guest >= size)
            {
                break;
            }

            if (VhdBitmap.IsSet(bitmap, s) && dataStart + (s + 1) * 512 > dataEnd)
            {
                bad.Add(new VhdBadRange(guest, Math.Min(512, size - guest), "block data past the end of the source (truncated)"));
            }
        }
    }

    internal static List<VhdBadRange> Merge(List<VhdBadRange> ranges)
    {
        var merged = new List<VhdBadRange>();
        foreach (var r in ranges.OrderBy(r => r.OffsetBytes))
        {
            if (merged.Count > 0 && merged[^1].EndBytes >= r.OffsetBytes && merged[^1].Reason == r.Reason)
            {
                var last = merged[^1];
                merged[^1] = last with { LengthBytes = Math.Max(last.EndBytes, r.EndBytes) - last.OffsetBytes };
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged;
    }

    private static VhdRecoveryPlan FixedPlan(IBlockSource source, VhdFooter footer, List<Finding> findings, List<string> repairs, VhdImageSummary stored)
    {
        var dataEnd = source.LengthBytes - VhdFooterLayout.Size;
        var size = (long)footer.CurrentSizeBytes;
        var bad = dataEnd < size ? new List<VhdBadRange> { new(Math.Max(0, dataEnd), size - Math.Max(0, dataEnd), "fixed VHD data past the end of the source (truncated)") } : [];
        return new VhdRecoveryPlan(source, footer, null, new Dictionary<long, VhdBlockPlacement>(), [], bad, findings, repairs, stored);
    }

    /// <summary>
    /// Used locator slots (MacX, W2ku, W2ru) whose data is in range but decodes to no text: tapdisk finds a parent only
    /// through them (libvhd vhd_parent_locator_get), and vhd-util check reads each one, so such a chain does not open
    /// in XenServer even though the parent can still be found by the header's parent name.
    /// </summary>
    private static IEnumerable<Finding> EmptyLocatorFindings(VhdImage image)
    {
        if (image.Footer?.DiskType != VhdDiskType.Differencing || image.Footer.DataOffsetBytes > long.MaxValue)
        {
            yield break;
        }

        foreach (var l in image.Info.Locators.Where(l => l.Text is { } t && string.IsNullOrWhiteSpace(t)))
        {
            // VHD spec: parent locator entries at header offset 576, 24 bytes each.
            yield return new Finding("VHD_LOCATOR_EMPTY", Severity.Warning,
                $"parent locator {l.Slot} ({l.Entry.CodeText}) holds no text at 0x{l.Entry.DataOffsetBytes:X}: XenServer cannot find the parent through it",
                checked((long)image.Footer.DataOffsetBytes + 576 + 24 * l.Slot), "locator text", "", "parent path");
        }
    }

    private static VhdImageSummary Summarise(VhdImage image) => new(
        image.Info.FooterSource.ToString().ToLowerInvariant(),
        image.Footer?.DiskType.ToString().ToLowerInvariant(),
        image.Footer is { } f ? (long)Math.Min(f.CurrentSizeBytes, long.MaxValue) : null,
        image.Info.AllocatedBlockCount,
        image.Info.BatmapUsable,
        image.Info.ParentUuid,
        image.Info.ParentName,
        image.Info.Locators.Where(l => l.Text is not null).Select(l => $"{l.Entry.CodeText}: {l.Text}").ToList());
}
