// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;

namespace VRescue.Storage.Vhd;

/// <summary>Where the footer in use was found (libvhd vhd_read_footer order).</summary>
public enum VhdFooterSource
{
    /// <summary>No usable footer.</summary>
    None,
    /// <summary>Last 512 bytes of the source (file end, or device end on an LV).</summary>
    End,
    /// <summary>511-byte "short footer" at end - 511 (old VHDs).</summary>
    EndShort,
    /// <summary>Footer copy at offset 0 (dynamic and differencing disks).</summary>
    Copy,
}

/// <summary>A parent locator with its decoded text (null when unreadable or of an unknown code).</summary>
public sealed record VhdLocatorInfo(int Slot, VhdParentLocator Entry, string? Text);

/// <summary>What opening a VHD found. Finding offsets are absolute within the source.</summary>
public sealed record VhdImageInfo(
    VhdFooter? Footer,
    VhdFooterSource FooterSource,
    VhdDynamicHeader? Header,
    int AllocatedBlockCount,
    VhdBatmapHeader? BatmapHeader,
    bool BatmapUsable,
    int BatmapFullBlockCount,
    Guid? ParentUuid,
    string? ParentName,
    IReadOnlyList<VhdLocatorInfo> Locators,
    IReadOnlyList<Finding> Findings);

/// <summary>
/// A VHD opened the tapdisk way from any <see cref="IBlockSource"/> (file or LV view): footer, dynamic header, BAT
/// (only the entries within the virtual size), batmap and parent locators. Never throws on bad bytes: problems
/// become findings and <see cref="CanRead"/> says whether the guest view can be built.
/// </summary>
public sealed class VhdImage
{
    private readonly byte[] _batmap;

    private VhdImage(IBlockSource source, VhdImageInfo info, VhdBat? bat, byte[] batmap, bool canRead)
    {
        Source = source;
        Info = info;
        Bat = bat;
        _batmap = batmap;
        CanRead = canRead;
    }

    public IBlockSource Source { get; }

    public VhdImageInfo Info { get; }

    public VhdFooter? Footer => Info.Footer;

    public VhdDynamicHeader? Header => Info.Header;

    /// <summary>BAT entries within the virtual size; null for fixed disks or when unreadable.</summary>
    public VhdBat? Bat { get; }

    /// <summary>True when footer, header and BAT are good enough to read guest data.</summary>
    public bool CanRead { get; }

    public IReadOnlyList<Finding> Findings => Info.Findings;

    /// <summary>Guest-visible size (footer current size).</summary>
    public long VirtualSizeBytes => Footer is { } f && f.CurrentSizeBytes <= VhdFooter.MaxCurrentSizeBytes ? (long)f.CurrentSizeBytes : 0;

    /// <summary>True when the (checksum-valid) batmap marks <paramref name="block"/> as completely full.</summary>
    public bool IsBlockFull(long block) => Info.BatmapUsable && VhdBitmap.IsSet(_batmap, block);

    /// <summary>Absolute offset of the bitmap sector of <paramref name="block"/>, or null when unallocated.</summary>
    public long? BitmapOffsetBytes(long block) => Bat is { } bat && bat.IsAllocated(block) ? bat[block] * 512L : null;

    /// <summary>Absolute offset of the data of <paramref name="block"/>, or null when unallocated.</summary>
    public long? DataOffsetBytes(long block) =>
        BitmapOffsetBytes(block) is { } b && Header is { } h ? checked(b + h.BitmapSizeSectors * 512) : null;

    /// <summary>Reads the sector bitmap of an allocated block (zero-filled where the source ends).</summary>
    public byte[] ReadSectorBitmap(long block)
    {
        var h = Header ?? throw new InvalidOperationException("not a dynamic VHD");
        var offset = BitmapOffsetBytes(block) ?? throw new ArgumentOutOfRangeException(nameof(block), "block is not allocated");
        var bitmap = new byte[checked((int)(h.BitmapSizeSectors * 512))];
        Source.ReadZeroFilled(offset, bitmap);
        return bitmap;
    }

    /// <summary>Opens <paramref name="source"/> read-only. Throws only on I/O errors of the source.</summary>
    public static VhdImage Open(IBlockSource source)
    {
        var findings = new List<Finding>();
        var length = source.LengthBytes;
        var (footer, footerSource) = ReadFooter(source, findings);
        if (footer is null)
        {
            return new VhdImage(source, Empty(findings), null, [], false);
        }

        var footerUsable = !footer.Validate().Any(f => f.Severity == Severity.Error && f.Code is "VHD_DISK_TYPE" or "VHD_CURRENT_SIZE" or "VHD_FOOTER_DATA_OFFSET");
        if (footer.DiskType == VhdDiskType.Fixed || !footer.HasDynamicHeader)
        {
            if (footer.DiskType == VhdDiskType.Fixed && footerUsable && (long)footer.CurrentSizeBytes > length - VhdFooterLayout.Size)
            {
                findings.Add(new Finding("VHD_FIXED_TRUNCATED", Severity.Warning,
                    "fixed VHD data is shorter than its virtual size; the missing tail reads as zeros",
                    length, "curr_size", footer.CurrentSizeBytes.ToString(), $"<= {length - VhdFooterLayout.Size}"));
            }

            var fixedInfo = new VhdImageInfo(footer, footerSource, null, 0, null, false, 0, null, null, [], findings);
            return new VhdImage(source, fixedInfo, null, [], footerUsable && footer.DiskType == VhdDiskType.Fixed);
        }

        // Dynamic or differencing: header at footer.data_offset (libvhd vhd_read_header).
        VhdDynamicHeader? header = null;
        if (footerUsable && (long)footer.DataOffsetBytes <= length - VhdDynamicHeaderLayout.Size)
        {
            var headerOffset = (long)footer.DataOffsetBytes;
            header = VhdDynamicHeader.Decode(source.ReadBytes(headerOffset, VhdDynamicHeaderLayout.Size));
            findings.AddRange(header.Validate().Select(f => f.Rebase(headerOffset)));
            if (header.Cookie != "cxsparse")
            {
                header = null;
            }
        }
        else if (footerUsable)
        {
            // A source shorter than the header itself (a file cut inside it) has no valid data_offset to name.
            var room = length - VhdDynamicHeaderLayout.Size;
            findings.Add(new Finding("VHD_HEADER_OFFSET", Severity.Error,
                room < 0
                    ? $"the source is {length} bytes, too short for the {VhdDynamicHeaderLayout.Size}-byte dynamic header at data_offset {footer.DataOffsetBytes} (truncated?)"
                    : $"dynamic header offset {footer.DataOffsetBytes} lies beyond the {length}-byte source (the header is {VhdDynamicHeaderLayout.Size} bytes)",
                VhdFooterLayout.DataOffset + FooterBase(footerSource, length), "data_offset", footer.DataOffsetBytes.ToString(),
                room < 0 ? $"a source of at least {footer.DataOffsetBytes + VhdDynamicHeaderLayout.Size} bytes" : $"<= {room}"));
        }

        if (header is null)
        {
            return new VhdImage(source, new VhdImageInfo(footer, footerSource, null, 0, null, false, 0, null, null, [], findings), null, [], false);
        }

        var headerBase = (long)footer.DataOffsetBytes;
        var metadata = new List<VhdMetadataRange>
        {
            new("footer copy", 0, VhdFooterLayout.Size),
            new("dynamic header", headerBase, VhdDynamicHeaderLayout.Size),
        };
        var bat = ReadBat(source, footer, header, headerBase, metadata, findings);
        var locators = ReadLocators(source, footer, header, headerBase, metadata, findings);
        var (batmapHeader, batmap, batmapUsable) = ReadBatmap(source, footer, header, bat, metadata, findings);
        if (bat is not null)
        {
            findings.AddRange(bat.Validate(checked(header.BitmapSizeSectors + header.BlockSizeBytes / 512), length, metadata));
        }

        var fullBlocks = 0;
        if (batmapUsable && bat is not null)
        {
            for (var i = 0; i < bat.Count; i++)
            {
                fullBlocks += VhdBitmap.IsSet(batmap, i) ? 1 : 0;
            }
        }

        var isDiff = footer.DiskType == VhdDiskType.Differencing;
        var info = new VhdImageInfo(footer, footerSource, header, bat?.AllocatedCount ?? 0, batmapHeader, batmapUsable, fullBlocks,
            isDiff ? header.ParentUuid : null, isDiff ? header.ParentUnicodeName : null, locators, findings);
        return new VhdImage(source, info, bat, batmap, bat is not null && header.IsBlockSizeUsable);
    }

    private static VhdImageInfo Empty(List<Finding> findings) =>
        new(null, VhdFooterSource.None, null, 0, null, false, 0, null, null, [], findings);

    private static long FooterBase(VhdFooterSource source, long length) => source switch
    {
        VhdFooterSource.End => length - VhdFooterLayout.Size,
        VhdFooterSource.EndShort => length - VhdFooterLayout.ShortSize,
        _ => 0,
    };

    private static bool IsGood(VhdFooter f) => f.HasValidCookie && !f.Validate().Any(x => x.Severity == Severity.Error);

    private static (VhdFooter?, VhdFooterSource) ReadFooter(IBlockSource source, List<Finding> findings)
    {
        var length = source.LengthBytes;
        if (length < VhdFooterLayout.Size)
        {
            findings.Add(new Finding("VHD_TOO_SMALL", Severity.Error, $"source is {length} bytes, smaller than a VHD footer", 0));
            return (null, VhdFooterSource.None);
        }

        var endOffset = length - VhdFooterLayout.Size;
        var end = VhdFooter.Decode(source.ReadBytes(endOffset, VhdFooterLayout.Size));
        var copy = VhdFooter.Decode(source.ReadBytes(0, VhdFooterLayout.Size));
        if (IsGood(end))
        {
            findings.AddRange(end.Validate().Select(f => f.Rebase(endOffset)));
            if (end.HasDynamicHeader && endOffset > 0)
            {
                if (!IsGood(copy))
                {
                    findings.Add(new Finding("VHD_FOOTER_COPY_INVALID", Severity.Warning, "the footer copy at offset 0 is not a valid footer", 0));
                }
                else if (!copy.Raw.Span.SequenceEqual(end.Raw.Span))
                {
                    findings.Add(new Finding("VHD_FOOTER_COPY_DIFFERS", Severity.Info,
                        $"the footer copy at offset 0 differs from the footer at the end (hidden {copy.Hidden} vs {end.Hidden}, uuid {copy.Uuid} vs {end.Uuid})", 0));
                }
            }

            return (end, VhdFooterSource.End);
        }

        var shortOffset = length - VhdFooterLayout.ShortSize;
        var shortFooter = VhdFooter.Decode(source.ReadBytes(shortOffset, VhdFooterLayout.ShortSize));
        if (IsGood(shortFooter))
        {
            findings.Add(new Finding("VHD_FOOTER_SHORT", Severity.Info, "footer found as a 511-byte short footer at end - 511", shortOffset));
            return (shortFooter, VhdFooterSource.EndShort);
        }

        var (code, what) = end.IsKilled ? ("VHD_FOOTER_KILLED", "filled with 0xC7 (tapdisk had the VHD open read-write: vhd_kill_footer)")
            : end.IsZeroed ? ("VHD_FOOTER_ZEROED", "all zeros")
            : ("VHD_FOOTER_END_INVALID", $"not valid ({string.Join("; ", end.Validate().Where(f => f.Severity == Severity.Error).Select(f => f.Message))})");
        if (IsGood(copy))
        {
            findings.Add(new Finding(code, Severity.Warning, $"the footer at the end is {what}; using the copy at offset 0", endOffset));
            findings.AddRange(copy.Validate());
            return (copy, VhdFooterSource.Copy);
        }

        // No valid footer anywhere: keep one with a good cookie so the user still sees its fields.
        findings.Add(new Finding(code, Severity.Error, $"the footer at the end is {what}, and the copy at offset 0 is not valid either", endOffset));
        if (end.HasValidCookie)
        {
            findings.AddRange(end.Validate().Select(f => f.Rebase(endOffset)));
            return (end, VhdFooterSource.End);
        }

        if (copy.HasValidCookie)
        {
            findings.AddRange(copy.Validate());
            return (copy, VhdFooterSource.Copy);
        }

        findings.Add(new Finding("VHD_FOOTER_MISSING", Severity.Error, "no VHD footer (\"conectix\") at end - 512, end - 511 or offset 0", endOffset));
        return (null, VhdFooterSource.None);
    }

    private static VhdBat? ReadBat(IBlockSource source, VhdFooter footer, VhdDynamicHeader header, long headerBase,
        List<VhdMetadataRange> metadata, List<Finding> findings)
    {
        if (!header.IsBlockSizeUsable || header.TableOffsetBytes % 512 != 0 || header.TableOffsetBytes > long.MaxValue / 2)
        {
            return null;
        }

        var length = source.LengthBytes;
        var tableOffset = (long)header.TableOffsetBytes;
        metadata.Add(new VhdMetadataRange("BAT", tableOffset, Math.Min(header.TableSizeBytes, Math.Max(0, length - tableOffset))));
        var used = header.UsedTableEntries(footer.CurrentSizeBytes);
        if (used > VhdBat.MaxEntries)
        {
            findings.Add(new Finding("VHD_BAT_TOO_LARGE", Severity.Error,
                $"virtual size / block size needs {used} BAT entries; VRescue reads at most {VhdBat.MaxEntries}",
                headerBase + VhdDynamicHeaderLayout.BlockSize, "block_size", header.BlockSizeBytes.ToString(), null));
            return null;
        }

        if (header.MaxTableEntries < used)
        {
            findings.Add(new Finding("VHD_BAT_TOO_SMALL", Severity.Error,
                $"the BAT has {header.MaxTableEntries} entries but the virtual size needs {used}; the blocks past the BAT read as unallocated",
                headerBase + VhdDynamicHeaderLayout.MaxTableEntries, "max_bat_size", header.MaxTableEntries.ToString(), $">= {used}"));
            used = header.MaxTableEntries;
        }

        if (header.TableSizeBytes > length)
        {
            findings.Add(new Finding("VHD_MAX_TABLE_ENTRIES", Severity.Warning,
                $"max BAT entries reserve {header.TableSizeBytes} bytes, more than the whole source; only the {used} entries within the virtual size are read",
                headerBase + VhdDynamicHeaderLayout.MaxTableEntries, "max_bat_size", header.MaxTableEntries.ToString(), null));
        }

        var available = tableOffset >= length ? 0 : (length - tableOffset) / 4;
        if (available < used)
        {
            findings.Add(new Finding("VHD_BAT_TRUNCATED", Severity.Error,
                $"the BAT runs past the end of the source; {Math.Max(0, used - available)} entries are missing and read as unallocated",
                tableOffset, "bat", available.ToString(), used.ToString()));
            used = available;
        }

        var bytes = new byte[checked((int)(used * 4))];
        if (used > 0)
        {
            source.ReadExactlyAt(tableOffset, bytes);
        }

        return VhdBat.Decode(bytes, tableOffset);
    }

    private static List<VhdLocatorInfo> ReadLocators(IBlockSource source, VhdFooter footer, VhdDynamicHeader header, long headerBase,
        List<VhdMetadataRange> metadata, List<Finding> findings)
    {
        var result = new List<VhdLocatorInfo>();
        if (footer.DiskType != VhdDiskType.Differencing)
        {
            return result;
        }

        for (var i = 0; i < header.ParentLocators.Count; i++)
        {
            var loc = header.ParentLocators[i];
            if (!loc.IsUsed)
            {
                continue;
            }

            var entryOffset = headerBase + VhdDynamicHeaderLayout.ParentLocators + i * VhdDynamicHeaderLayout.ParentLocatorSize;
            var len = (long)loc.DataLength;
            if (len > VhdParentLocator.MaxDataLengthBytes || loc.DataOffsetBytes > (ulong)source.LengthBytes
                || (long)loc.DataOffsetBytes + len > source.LengthBytes)
            {
                findings.Add(new Finding("VHD_LOCATOR_RANGE", Severity.Warning, $"parent locator {i} ({loc.CodeText}) points outside the source or is too long",
                    entryOffset, $"loc[{i}]", $"{loc.DataOffsetBytes}+{loc.DataLength}", $"within {source.LengthBytes}"));
                result.Add(new VhdLocatorInfo(i, loc, null));
                continue;
            }

            metadata.Add(new VhdMetadataRange($"parent locator {i}", (long)loc.DataOffsetBytes, Math.Max(len, loc.DataSpaceBytes)));
            var data = source.ReadBytes((long)loc.DataOffsetBytes, (int)len);
            result.Add(new VhdLocatorInfo(i, loc, loc.DecodeText(data)));
        }

        return result;
    }

    private static (VhdBatmapHeader?, byte[], bool) ReadBatmap(IBlockSource source, VhdFooter footer, VhdDynamicHeader header, VhdBat? bat,
        List<VhdMetadataRange> metadata, List<Finding> findings)
    {
        // libvhd vhd_has_batmap: tapdisk-created dynamic disks, version >= 1.2 (1.1 may have one too: probe the cookie).
        if (!footer.IsTapCreator || bat is null)
        {
            return (null, [], false);
        }

        var length = source.LengthBytes;
        var headerOffset = VhdBatmapHeader.HeaderOffsetBytes(header);
        var expected = footer.CreatorVersion >= VhdFooter.TapVersion1_2;
        if (headerOffset > length - VhdBatmapHeaderLayout.Size)
        {
            if (expected)
            {
                findings.Add(new Finding("VHD_BATMAP_MISSING", Severity.Warning, "batmap header offset lies beyond the source", headerOffset));
            }

            return (null, [], false);
        }

        var batmapHeader = VhdBatmapHeader.Decode(source.ReadBytes(headerOffset, VhdBatmapHeaderLayout.Size));
        if (!batmapHeader.HasValidCookie)
        {
            if (expected)
            {
                findings.Add(new Finding("VHD_BATMAP_MISSING", Severity.Warning, "no batmap header (\"tdbatmap\") where tapdisk 1.2+ writes it; sector bitmaps are used", headerOffset));
            }

            return (null, [], false);
        }

        var headerFindings = batmapHeader.Validate();
        findings.AddRange(headerFindings.Select(f => f.Rebase(headerOffset)));
        metadata.Add(new VhdMetadataRange("batmap header", headerOffset, VhdBatmapHeaderLayout.Size));
        if (headerFindings.Any(f => f.Code is "VHD_BATMAP_VERSION" or "VHD_BATMAP_RANGE"))
        {
            return (batmapHeader, [], false);
        }

        var mapOffset = (long)batmapHeader.BatmapOffsetBytes;
        var mapLength = Math.Max(VhdBatmapHeader.ChecksumLengthBytes(footer.CurrentSizeBytes), (bat.Count + 7) / 8);
        metadata.Add(new VhdMetadataRange("batmap", mapOffset, Math.Max(mapLength, Math.Min(batmapHeader.BatmapSizeBytes, length))));
        if (mapOffset > length - mapLength || batmapHeader.BatmapSizeBytes < (bat.Count + 7) / 8)
        {
            findings.Add(new Finding("VHD_BATMAP_RANGE", Severity.Warning, "batmap lies beyond the source or is too small for the BAT; batmap ignored",
                headerOffset + VhdBatmapHeaderLayout.BatmapOffset, "batmap_offset", $"{mapOffset}+{batmapHeader.BatmapSizeSectors} sectors", $"<= {length - mapLength}"));
            return (batmapHeader, [], false);
        }

        var map = source.ReadBytes(mapOffset, mapLength);
        var mapFindings = batmapHeader.ValidateMap(map, footer.CurrentSizeBytes);
        findings.AddRange(mapFindings.Select(f => f.Rebase(headerOffset)));
        return (batmapHeader, map, mapFindings.Count == 0);
    }
}
