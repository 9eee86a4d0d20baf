// SPDX-License-Identifier: MIT
using System.Security.Cryptography;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Carving;

/// <summary>
/// Footers for VHD heads whose footer copy @0 is damaged or gone but whose dynamic header @0x200 and BAT are valid
/// (<see cref="CarvePeKind.HeadFooterDamaged"/>). tapdisk keeps two footers (xenserver-lvhd.md 2.8: copy @0, primary
/// at LV end - 512), so the one at the LV end usually survives. In order of proof:
/// 1. an unmatched LV-end footer with the uuid the damaged copy still carries;
/// 2. the only unmatched LV-end footer that fits the header and BAT (disk type, data offset 0x200, size covers every
///    allocated block and stays within the table);
/// 3. the damaged copy's own fields, when they fit (its checksum is what failed);
/// 4. rebuilt from the header and BAT: virtual size up to the last allocated block (a lower bound), a uuid derived
///    from the head's bytes.
/// Each head resolved gets <see cref="CarvePeKind.VhdHead"/> and a finding saying which of these gave its footer.
/// </summary>
public static class CarveHeadFooters
{
    /// <summary>Gives every damaged head a footer; returns the finding per head, for its VDI.</summary>
    public static Dictionary<CarvePe, Finding> Resolve(IReadOnlyList<CarvePe[]> pes, HashSet<long> claimed, long extentBytes, int maxHeads)
    {
        var notes = new Dictionary<CarvePe, Finding>();
        var damaged = pes.SelectMany(p => p).Where(p => (p.Kind & CarvePeKind.HeadFooterDamaged) != 0 && !claimed.Contains(CarveSolver.Key(p.Source, p.Pe))).ToList();
        if (damaged.Count == 0)
        {
            return notes;
        }

        var owned = pes.SelectMany(p => p).Where(p => (p.Kind & CarvePeKind.VhdHead) != 0).Select(p => p.HeadFooter!.Uuid).ToHashSet();
        var tails = pes.SelectMany(p => p)
            .Where(p => p.Tail is { } t && !owned.Contains(t.Uuid) && !claimed.Contains(CarveSolver.Key(p.Source, p.Pe)))
            .ToList();
        // Bounded for hostile PVs (every extent a header, every other a footer): heads as many as Catalog keeps, and the
        // "only one fits" search only among a few thousand unmatched footers (beyond that one fitting proves nothing).
        var maxLvBytes = pes.Sum(p => (long)p.Length) * extentBytes;
        var byUuid = tails.GroupBy(t => t.Tail!.Uuid).ToDictionary(g => g.Key, g => g.ToList());
        var searchable = tails.Count <= MaxFooterSearch ? tails : [];
        var taken = new HashSet<CarvePe>();
        foreach (var head in damaged.Take(maxHeads))
        {
            var header = head.HeadHeader!;
            var last = LastAllocatedBlock(head.HeadBat!, header, maxLvBytes);
            var copy = head.DamagedFooterCopy is { } bytes && bytes.AsSpan().StartsWith(VhdFooter.CookieMagic) ? VhdFooter.Decode(bytes) : null;
            var sameUuid = copy is not null && byUuid.TryGetValue(copy.Uuid, out var list) ? list : [];
            var fitting = searchable.Where(t => !taken.Contains(t) && Fits(t.Tail!, header, last)).ToList();
            VhdFooter footer;
            string how;
            if (sameUuid.FirstOrDefault(t => !taken.Contains(t) && Fits(t.Tail!, header, last)) is { } same)
            {
                (footer, how) = (same.Tail!, $"taken from the LV-end footer at PE {same.Pe}, which has the uuid the damaged copy still carries");
                taken.Add(same);
            }
            else if (fitting.Count == 1)
            {
                (footer, how) = (fitting[0].Tail!, $"taken from the LV-end footer at PE {fitting[0].Pe}, the only one no other head claims that fits this header and BAT");
                taken.Add(fitting[0]);
            }
            else if (copy is not null && copy.DataOffsetBytes == 512 && Fits(copy, header, last))
            {
                (footer, how) = (Reencode(copy), "the damaged copy's own fields (its checksum failed; they fit the header and BAT)"
                    + (fitting.Count > 1 ? $"; LV-end footers at PE(s) {string.Join(", ", fitting.Select(t => t.Pe))} fit as well" : ""));
            }
            else
            {
                footer = Rebuild(head, header, last);
                head.FooterRebuilt = true;
                how = $"rebuilt from the header and BAT: virtual size {footer.CurrentSizeBytes} bytes is a lower bound (up to the last allocated block), uuid {footer.Uuid} made up"
                    + (fitting.Count > 1 ? $"; LV-end footers at PE(s) {string.Join(", ", fitting.Select(t => t.Pe))} fit equally and none can be told apart" : "");
            }

            head.HeadFooter = footer;
            head.HeadBat = head.HeadBat![..(int)Math.Min(head.HeadBat!.Length, header.UsedTableEntries(footer.CurrentSizeBytes))];
            head.Kind |= CarvePeKind.VhdHead;
            var finding = new Finding("CARVE_HEAD_FOOTER_DAMAGED", Severity.Warning,
                $"VHD head at PE {head.Pe}: the footer copy at offset 0 is {(copy is null ? "gone" : "damaged (checksum)")}, the dynamic header at 0x200 is valid; footer {how}",
                head.OffsetBytes);
            notes[head] = finding;
        }

        return notes;
    }

    private const int MaxFooterSearch = 4096;

    /// <summary>
    /// After the solve: a rebuilt footer's virtual size reaches only the last allocated block. The guest's own structures
    /// (GPT alternate header, MBR partition ends, ext block count: <see cref="VhdSizeInference.GuestDiskSize"/>, as
    /// `vrescue vhd repair` uses them), read through the VDI's confidently placed extents, usually give the real size;
    /// a guest file system larger than its disk would not mount.
    /// </summary>
    public static void RefineRebuiltSizes(IReadOnlyList<CarvedVdi> vdis, IReadOnlyList<IBlockSource> sources, long peStartBytes, long extentBytes)
    {
        foreach (var v in vdis.Where(v => v.Head.FooterRebuilt))
        {
            var head = new byte[4096];
            if (!CarveGuestExt4.ReadGuest(vdis, v, sources, peStartBytes, extentBytes, 0, head)
                || VhdSizeInference.GuestDiskSize(new MemoryBlockSource(head)) is not { } hint)
            {
                continue;
            }

            var size = (ulong)VhdSizeInference.RoundUpToSmBlock(hint);
            if (size <= v.Footer.CurrentSizeBytes || size > Math.Min(VhdFooter.MaxCurrentSizeBytes, (ulong)v.Header.MaxTableEntries * v.Header.BlockSizeBytes))
            {
                continue;
            }

            v.Findings.Add(new Finding("CARVE_HEAD_SIZE_FROM_GUEST", Severity.Warning,
                $"{v.LvName}: rebuilt footer's virtual size raised from {v.Footer.CurrentSizeBytes} to {size} bytes: the guest's own structures span {hint} bytes",
                v.Head.OffsetBytes));
            v.Footer = Reencode(v.Footer.WithSize(size));
        }
    }

    /// <summary>Whether <paramref name="f"/> can be this header's footer: type, data offset and a size covering every allocated block.</summary>
    private static bool Fits(VhdFooter f, VhdDynamicHeader header, long lastAllocated) =>
        f.DataOffsetBytes == 512
        && f.HasDynamicHeader
        && (f.DiskType == VhdDiskType.Differencing) == (header.ParentUuid != Guid.Empty)
        && f.CurrentSizeBytes > 0
        && f.CurrentSizeBytes <= Math.Min(VhdFooter.MaxCurrentSizeBytes, (ulong)header.MaxTableEntries * header.BlockSizeBytes)
        && header.UsedTableEntries(f.CurrentSizeBytes) > lastAllocated;

    /// <summary>
    /// The last BAT entry that points past the table and whose block ends within <paramref name="maxLvBytes"/> (zeros,
    /// entries into the metadata or past every scanned extent are garbage, as Catalog treats them).
    /// </summary>
    private static long LastAllocatedBlock(uint[] bat, VhdDynamicHeader header, long maxLvBytes)
    {
        var dataStartSector = ((long)header.TableOffsetBytes + header.TableSizeBytes) / 512;
        var lastStartSector = (maxLvBytes - 512 - header.BlockSizeBytes) / 512;
        for (var b = bat.Length - 1; b >= 0; b--)
        {
            if (bat[b] != VhdBat.Unallocated && bat[b] >= dataStartSector && bat[b] <= lastStartSector)
            {
                return b;
            }
        }

        return -1;
    }

    private static VhdFooter Reencode(VhdFooter f)
    {
        var bytes = new byte[VhdFooterLayout.Size];
        f.Encode(bytes);
        return VhdFooter.Decode(bytes);
    }

    private static VhdFooter Rebuild(CarvePe head, VhdDynamicHeader header, long lastAllocated)
    {
        var size = (ulong)Math.Max(1, lastAllocated + 1) * header.BlockSizeBytes;
        // A stable made-up uuid (same head, same uuid on every run), RFC 4122 version 4 bits set.
        var hash = SHA256.HashData([.. BitConverter.GetBytes(head.Source), .. BitConverter.GetBytes(head.Pe), .. header.Raw.Span]);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x40);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return Reencode(new VhdFooter
        {
            DataOffsetBytes = 512,
            DiskType = header.ParentUuid == Guid.Empty ? VhdDiskType.Dynamic : VhdDiskType.Differencing,
            Uuid = new Guid(hash.AsSpan(0, 16), bigEndian: true),
        }.WithSize(size));
    }
}
