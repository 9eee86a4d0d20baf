// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;

namespace VRescue.Storage.Vhd;

/// <summary>What a differencing VHD says about its parent, handed to the resolver.</summary>
/// <param name="Uuid">Header parent uuid = the parent's footer uuid; <see cref="Guid.Empty"/> means a raw parent (LV-&lt;uuid&gt;).</param>
/// <param name="Name">Header parent name (UTF-16BE basename).</param>
/// <param name="LocatorTexts">Decoded parent locator texts.</param>
public sealed record VhdParentReference(Guid Uuid, string? Name, IReadOnlyList<string> LocatorTexts);

/// <summary>
/// A VHD and its ancestors, leaf first, resolved through a caller-supplied delegate, with a hop limit and a visited
/// set of footer uuids so cycles and self-parents end as findings rather than loops.
/// </summary>
public sealed class VhdChain
{
    /// <summary>SM's MAX_CHAIN_SIZE is 30; allow some slack for chains built by hand.</summary>
    public const int DefaultMaxDepth = 64;

    private VhdChain(IReadOnlyList<VhdImage> images, IBlockSource? rawBase, IReadOnlyList<Finding> findings, IBlockSource? content)
    {
        Images = images;
        RawBase = rawBase;
        Findings = findings;
        Content = content;
    }

    /// <summary>The VHDs, leaf first.</summary>
    public IReadOnlyList<VhdImage> Images { get; }

    /// <summary>Raw (non-VHD) parent at the bottom, when the last VHD has an all-zero parent uuid.</summary>
    public IBlockSource? RawBase { get; }

    /// <summary>Findings of every member (message prefixed with its source name) and of the chain walk.</summary>
    public IReadOnlyList<Finding> Findings { get; }

    /// <summary>Guest view of the leaf with parents resolved; null when the chain is broken.</summary>
    public IBlockSource? Content { get; }

    /// <summary>Content, or a <see cref="CorruptDataException"/> naming why the chain cannot be read.</summary>
    public IBlockSource OpenContent()
    {
        if (Content is not null)
        {
            return Content;
        }

        var f = Findings.FirstOrDefault(x => x.Severity == Severity.Error && x.Code.StartsWith("VHD_CHAIN", StringComparison.Ordinal) || x.Code.StartsWith("VHD_PARENT", StringComparison.Ordinal))
            ?? Findings.FirstOrDefault(x => x.Severity == Severity.Error);
        throw new CorruptDataException("VHD", "chain", f?.Code ?? "VHD_CHAIN_BROKEN", f?.Message ?? "VHD chain cannot be read", f?.OffsetBytes, f?.Field, f?.Stored, f?.Expected);
    }

    /// <summary>Opens a chain resolving parents by footer uuid.</summary>
    public static VhdChain Open(IBlockSource leaf, Func<Guid, IBlockSource?> resolveByUuid, int maxDepth = DefaultMaxDepth) =>
        OpenWithReferences(leaf, r => resolveByUuid(r.Uuid), maxDepth);

    /// <summary>Opens <paramref name="leaf"/> and walks parents through <paramref name="resolve"/>, which sees uuid, name and locators (null = not found; for an all-zero uuid return the raw parent).</summary>
    public static VhdChain OpenWithReferences(IBlockSource leaf, Func<VhdParentReference, IBlockSource?> resolve, int maxDepth = DefaultMaxDepth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDepth, 1);
        var images = new List<VhdImage>();
        var findings = new List<Finding>();
        var visited = new HashSet<Guid>();
        IBlockSource? rawBase = null;
        var broken = false;
        var current = leaf;
        Guid? expectedUuid = null;
        while (true)
        {
            var image = VhdImage.Open(current);
            findings.AddRange(image.Findings.Select(f => f with { Message = $"{current.Name}: {f.Message}" }));
            if (!image.CanRead)
            {
                broken = true;
                break;
            }

            var footer = image.Footer!;
            if (expectedUuid is { } want && footer.Uuid != want)
            {
                findings.Add(new Finding("VHD_PARENT_UUID_MISMATCH", Severity.Error,
                    $"{current.Name}: the resolver returned a VHD with footer uuid {footer.Uuid}, but the child names parent {want}",
                    null, "uuid", footer.Uuid.ToString(), want.ToString()));
                broken = true;
                break;
            }

            if (!visited.Add(footer.Uuid))
            {
                findings.Add(new Finding("VHD_CHAIN_CYCLE", Severity.Error,
                    $"{current.Name}: VHD {footer.Uuid} appears twice in its own parent chain", null, "prt_uuid", footer.Uuid.ToString()));
                broken = true;
                break;
            }

            if (images.Count > 0 && image.VirtualSizeBytes != images[^1].VirtualSizeBytes)
            {
                findings.Add(new Finding("VHD_PARENT_SIZE", Severity.Info,
                    $"{current.Name}: parent virtual size {image.VirtualSizeBytes} differs from the child's {images[^1].VirtualSizeBytes} (resized chain)"));
            }

            images.Add(image);
            if (footer.DiskType != VhdDiskType.Differencing)
            {
                break;
            }

            var header = image.Header!;
            if (header.ParentUuid == footer.Uuid)
            {
                findings.Add(new Finding("VHD_CHAIN_CYCLE", Severity.Error, $"{current.Name}: VHD {footer.Uuid} names itself as its parent",
                    (long)footer.DataOffsetBytes + VhdDynamicHeaderLayout.ParentUuid, "prt_uuid", header.ParentUuid.ToString()));
                broken = true;
                break;
            }

            if (images.Count >= maxDepth)
            {
                findings.Add(new Finding("VHD_CHAIN_TOO_DEEP", Severity.Error, $"{leaf.Name}: parent chain longer than {maxDepth} VHDs"));
                broken = true;
                break;
            }

            var reference = new VhdParentReference(header.ParentUuid, header.ParentUnicodeName,
                image.Info.Locators.Where(l => l.Text is not null).Select(l => l.Text!).ToArray());
            var parent = resolve(reference);
            if (parent is null)
            {
                findings.Add(new Finding("VHD_PARENT_NOT_FOUND", Severity.Error,
                    $"{current.Name}: parent {header.ParentUuid} (\"{header.ParentUnicodeName}\") not found",
                    (long)footer.DataOffsetBytes + VhdDynamicHeaderLayout.ParentUuid, "prt_uuid", header.ParentUuid.ToString()));
                broken = true;
                break;
            }

            if (header.ParentUuid == Guid.Empty)
            {
                rawBase = parent;
                break;
            }

            expectedUuid = header.ParentUuid;
            current = parent;
        }

        IBlockSource? content = null;
        if (!broken)
        {
            content = rawBase;
            for (var i = images.Count - 1; i >= 0; i--)
            {
                content = new VhdBlockSource(images[i], content);
            }
        }

        return new VhdChain(images, rawBase, findings, content);
    }
}
