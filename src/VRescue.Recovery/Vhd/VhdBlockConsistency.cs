// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Storage;
using VRescue.Storage.Vhd;

namespace VRescue.Recovery.Vhd;

/// <summary>
/// Per-block checks of the blocks the BAT places: batmap against sector bitmaps, and the 4 KiB data alignment tapdisk
/// allocates with (bitmap sector at (entry + 1) % 8 == 0, research §2.5). tapdisk trusts a set batmap bit and reads the
/// whole block from the data area without looking at the bitmap, so a set bit over a partial bitmap is a real
/// disagreement; a full bitmap under a clear bit only means tapdisk had not yet set the bit (it does so lazily).
/// </summary>
public static class VhdBlockConsistency
{
    /// <summary>Findings listed per kind at most; the rest are summarised in one finding.</summary>
    public const int MaxFindingsPerKind = 256;

    public static void Check(IBlockSource source, VhdImage image, VhdFooter footer, VhdDynamicHeader header,
        IEnumerable<VhdBlockPlacement> placements, List<Finding> findings, List<string> repairs)
    {
        var batPlaced = placements.Where(p => p.Provenance == VhdBlockProvenance.Bat).OrderBy(p => p.GuestBlock).ToList();
        CheckAlignment(footer, header, batPlaced, findings, repairs);

        // Only a checksum-valid batmap of the same header is evidence (VhdImage drops the rest with a finding).
        if (!image.Info.BatmapUsable || image.Info.BatmapHeader is not { } batmapHeader || image.Header?.TableOffsetBytes != header.TableOffsetBytes)
        {
            return;
        }

        var sectorsPerBlock = header.BlockSizeBytes / 512;
        var bitmap = new byte[header.BitmapSizeSectors * 512];
        int mismatched = 0, lazy = 0;
        foreach (var p in batPlaced)
        {
            source.ReadZeroFilled(p.BitmapOffsetBytes, bitmap);
            var set = VhdBitmap.CountSet(bitmap, sectorsPerBlock);
            var batmapSet = image.IsBlockFull(p.GuestBlock);
            if (batmapSet && set != sectorsPerBlock)
            {
                if (++mismatched <= MaxFindingsPerKind)
                {
                    findings.Add(new Finding("VHD_BATMAP_BITMAP_MISMATCH", Severity.Error,
                        $"block {p.GuestBlock}: the batmap marks it fully allocated but its sector bitmap has {set} of {sectorsPerBlock} sectors set; "
                        + "tapdisk reads the whole block from the data area, this repair honours the bitmap (unset sectors read from the parent or as zeros)",
                        p.BitmapOffsetBytes, "bitmap", $"{set} sectors set", $"{sectorsPerBlock} (batmap bit set)"));
                    repairs.Add($"batmap: bit for block {p.GuestBlock} cleared in the output (its bitmap is not full)");
                }
            }
            else if (!batmapSet && set == sectorsPerBlock)
            {
                if (++lazy <= MaxFindingsPerKind)
                {
                    findings.Add(new Finding("VHD_BATMAP_BIT_CLEAR", Severity.Info,
                        $"block {p.GuestBlock}: its sector bitmap is full but its batmap bit is clear (tapdisk sets the bit lazily; reads are unaffected)",
                        checked((long)batmapHeader.BatmapOffsetBytes + p.GuestBlock / 8), $"batmap[{p.GuestBlock}]", "0", "1"));
                }
            }
        }

        Summarise(findings, "VHD_BATMAP_BITMAP_MISMATCH", mismatched, Severity.Error, (long)batmapHeader.BatmapOffsetBytes);
        Summarise(findings, "VHD_BATMAP_BIT_CLEAR", lazy, Severity.Info, (long)batmapHeader.BatmapOffsetBytes);
    }

    private static void CheckAlignment(VhdFooter footer, VhdDynamicHeader header, List<VhdBlockPlacement> placements, List<Finding> findings, List<string> repairs)
    {
        // qemu and Hyper-V pack blocks without alignment; only a tapdisk-made VHD is off its own layout.
        var unaligned = placements.Where(p => (p.BitmapOffsetBytes / 512 + 1) % 8 != 0).ToList();
        if (unaligned.Count == 0)
        {
            return;
        }

        if (!footer.IsTapCreator)
        {
            findings.Add(new Finding("VHD_BLOCK_UNALIGNED", Severity.Info,
                $"{unaligned.Count} of {placements.Count} data blocks are not 4 KiB aligned (usual for creator \"{footer.CreatorApplication.TrimEnd('\0')}\"); a --format vhd repair writes the XenServer layout",
                (long)header.TableOffsetBytes + unaligned[0].GuestBlock * 4));
            return;
        }

        foreach (var p in unaligned.Take(MaxFindingsPerKind))
        {
            var entry = p.BitmapOffsetBytes / 512;
            findings.Add(new Finding("VHD_BLOCK_UNALIGNED", Severity.Warning,
                $"block {p.GuestBlock}: data at {Hex.Offset(p.BitmapOffsetBytes + header.BitmapSizeSectors * 512)} is not 4 KiB aligned as tapdisk allocates it (bitmap sector {entry}, entry + 1 not a multiple of 8)",
                (long)header.TableOffsetBytes + p.GuestBlock * 4, $"bat[{p.GuestBlock}]", entry.ToString(), "(entry + 1) % 8 == 0"));
        }

        Summarise(findings, "VHD_BLOCK_UNALIGNED", unaligned.Count, Severity.Warning, (long)header.TableOffsetBytes);
        repairs.Add($"blocks: {unaligned.Count} unaligned block(s) rewritten 4 KiB aligned (--format vhd)");
    }

    private static void Summarise(List<Finding> findings, string code, int count, Severity severity, long offset)
    {
        if (count > MaxFindingsPerKind)
        {
            findings.Add(new Finding(code, severity, $"{count - MaxFindingsPerKind} more blocks like the above are not listed", offset));
        }
    }
}
