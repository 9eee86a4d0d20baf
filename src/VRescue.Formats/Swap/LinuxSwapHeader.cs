// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Swap;

/// <summary>
/// The Linux swap area header: page 0 of the area (include/linux/swap.h union swap_header). The magic
/// "SWAPSPACE2" (version 1; "SWAP-SPACE" is the obsolete version 0) fills the last 10 bytes of the page; the info
/// block starts at byte 1024: version, last_page, nr_badpages (u32, CPU byte order of the host that ran mkswap),
/// sws_uuid[16], sws_volume[16] (label), padding[117], badpages[]. The page size is the one of that host: 4 KiB on
/// x86, up to 64 KiB on arm64/ppc64, so the magic is searched at the end of each candidate page.
/// </summary>
public sealed record LinuxSwapHeader
{
    public const int InfoOffsetBytes = 1024;
    public const int BadPagesOffsetBytes = 1536;

    /// <summary>mkswap refuses areas under 10 pages (util-linux disk-utils/mkswap.c MIN_GOODPAGES).</summary>
    public const int MinimumPages = 10;

    private const int MagicLength = 10;
    private const int UuidOffset = InfoOffsetBytes + 12;
    private const int LabelOffset = InfoOffsetBytes + 28;
    private const int LabelLength = 16;

    /// <summary>Page sizes Linux builds use, smallest first.</summary>
    public static readonly int[] CandidatePageSizes = [4096, 8192, 16384, 65536];

    public required int PageSizeBytes { get; init; }

    /// <summary>1 for "SWAPSPACE2", 0 for the obsolete "SWAP-SPACE" (no info block).</summary>
    public required int MagicVersion { get; init; }

    public required bool BigEndian { get; init; }
    public required uint Version { get; init; }

    /// <summary>Index of the last usable page: the area is (last_page + 1) pages.</summary>
    public required uint LastPage { get; init; }

    public required uint BadPageCount { get; init; }
    public required Guid Uuid { get; init; }
    public required string Label { get; init; }

    /// <summary>What the header claims the area spans.</summary>
    public long AreaBytes => ((long)LastPage + 1) * PageSizeBytes;

    /// <summary>
    /// Finds and decodes the header in <paramref name="head"/> (the first bytes of the volume, at least one page),
    /// or null when no swap magic ends any candidate page that fits.
    /// </summary>
    public static LinuxSwapHeader? TryDecode(ReadOnlySpan<byte> head)
    {
        foreach (var page in CandidatePageSizes)
        {
            if (head.Length < page)
            {
                break;
            }

            var magic = head.Slice(page - MagicLength, MagicLength);
            var version = magic.SequenceEqual("SWAPSPACE2"u8) ? 1 : magic.SequenceEqual("SWAP-SPACE"u8) ? 0 : -1;
            if (version < 0)
            {
                continue;
            }

            var little = BinaryPrimitives.ReadUInt32LittleEndian(head[InfoOffsetBytes..]);
            var bigEndian = little != 1 && BinaryPrimitives.ReadUInt32BigEndian(head[InfoOffsetBytes..]) == 1;
            var label = head.Slice(LabelOffset, LabelLength);
            var end = label.IndexOf((byte)0);
            return new LinuxSwapHeader
            {
                PageSizeBytes = page,
                MagicVersion = version,
                BigEndian = bigEndian,
                Version = U32(head, InfoOffsetBytes, bigEndian),
                LastPage = U32(head, InfoOffsetBytes + 4, bigEndian),
                BadPageCount = U32(head, InfoOffsetBytes + 8, bigEndian),
                Uuid = new Guid(head.Slice(UuidOffset, 16), bigEndian: true),
                Label = Encoding.UTF8.GetString(end < 0 ? label : label[..end]),
            };
        }

        return null;
    }

    private static uint U32(ReadOnlySpan<byte> head, int offset, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(head[offset..]) : BinaryPrimitives.ReadUInt32LittleEndian(head[offset..]);

    /// <summary>
    /// Checks the header against the volume it sits on (offsets relative to the volume start): version, minimum size,
    /// an area larger than the volume (a truncated or shrunk partition), a bad-page list longer than the page holds.
    /// </summary>
    public IReadOnlyList<Finding> Validate(long volumeBytes)
    {
        var findings = new List<Finding>();
        if (MagicVersion == 0)
        {
            findings.Add(new Finding("SWAP_OLD_VERSION", Severity.Warning, "version 0 swap area (\"SWAP-SPACE\"): kernels since 2.5 refuse it; recreate it with mkswap", PageSizeBytes - MagicLength));
            return findings;
        }

        if (Version != 1)
        {
            findings.Add(new Finding("SWAP_VERSION", Severity.Error, $"swap header version {Version}; the kernel accepts only 1", InfoOffsetBytes, "version",
                Version.ToString(System.Globalization.CultureInfo.InvariantCulture), "1"));
        }

        if (LastPage < MinimumPages - 1)
        {
            findings.Add(new Finding("SWAP_TOO_SMALL", Severity.Error, $"swap header says last_page {LastPage}: fewer than {MinimumPages} pages", InfoOffsetBytes + 4, "last_page"));
        }
        else if (AreaBytes > volumeBytes)
        {
            findings.Add(new Finding("SWAP_BEYOND_VOLUME", Severity.Error,
                $"swap header says the area is {AreaBytes} bytes ({(long)LastPage + 1} pages of {PageSizeBytes}) but the volume has {volumeBytes}: truncated or shrunk",
                InfoOffsetBytes + 4, "last_page", LastPage.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ((volumeBytes / PageSizeBytes) - 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        var maxBad = (PageSizeBytes - BadPagesOffsetBytes - MagicLength) / 4;
        if (BadPageCount > maxBad)
        {
            findings.Add(new Finding("SWAP_BAD_PAGES", Severity.Error, $"nr_badpages {BadPageCount} does not fit the header page (at most {maxBad})", InfoOffsetBytes + 8, "nr_badpages"));
        }

        return findings;
    }
}
