// SPDX-License-Identifier: MIT
using System.Text.Json;
using System.Text.Json.Serialization;
using VRescue.Recovery.Sr;

namespace VRescue.Recovery.Export;

/// <summary>Output format of an exported VDI.</summary>
public enum ExportFormat
{
    /// <summary>Dynamic VHD with the chain flattened (xe vdi-import format=vhd, qemu-img -f vpc).</summary>
    Vhd,

    /// <summary>Sparse raw image (mount -o loop, qemu-img -f raw).</summary>
    Raw,
}

/// <summary>Progress of one VDI export: guest bytes done out of the virtual size.</summary>
public readonly record struct ExportProgress(Guid VdiUuid, string? NameLabel, long DoneBytes, long TotalBytes, int VdiIndex, int VdiCount);

/// <summary>One layer of the chain an export read, leaf first.</summary>
public sealed record ExportChainMember(string Uuid, string LvName, string Type, string? FooterUuid, bool Hidden);

/// <summary>Where the extent map of an exported VDI came from (docs/json/export.md "source").</summary>
public sealed record ExportSource(string Kind, long? Seqno, string? Path, string Description)
{
    public static ExportSource From(VgMetadataChoice c) => new(c.KindName, c.Seqno, c.Path, c.Describe());
}

/// <summary>One manifest entry (docs/json/export.md).</summary>
public sealed record ExportedVdi
{
    public required string Uuid { get; init; }
    public string? NameLabel { get; init; }
    public string? NameDescription { get; init; }

    /// <summary>File name inside the output directory; null when nothing was written.</summary>
    public string? File { get; init; }

    public required string Format { get; init; }
    public long VirtualSizeBytes { get; init; }

    /// <summary>sha256 of the guest-visible raw content (the same for raw and VHD output).</summary>
    public string? Sha256 { get; init; }

    public required IReadOnlyList<ExportChainMember> Chain { get; init; }
    public required ExportSource Source { get; init; }
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>exported | partial | failed.</summary>
    public required string Status { get; init; }

    /// <summary>True when some guest ranges could not be read (they are zeros in the output).</summary>
    public bool Partial { get; init; }

    public IReadOnlyList<ByteRange> UnreadableRanges { get; init; } = [];
    public string? Error { get; init; }

    /// <summary>Hidden VHD or raw VDI (base copy, or deleted and not yet garbage-collected).</summary>
    public bool Hidden { get; init; }

    /// <summary>Not present in the current metadata (recovered from an older version or a backup), or a hidden leaf.</summary>
    public bool Deleted { get; init; }

    public bool? IsSnapshot { get; init; }
    public string? SnapshotOf { get; init; }

    /// <summary>Bytes written to the output file (excluding holes and unallocated VHD blocks).</summary>
    public long WrittenBytes { get; init; }

    public double Seconds { get; init; }

    /// <summary>With --keep-chain: every file of the exported chain, base first, the leaf last (= <see cref="File"/>); null otherwise.</summary>
    public IReadOnlyList<ExportLayer>? Layers { get; init; }

    /// <summary>Set when no metadata maps the VDI and its extents were carved (recover); null otherwise.</summary>
    public ExportCarveInfo? Carve { get; init; }
}

/// <summary>
/// How a carved VDI's extents were found: lowest confidence, head, extents below 0.8 or ambiguous (docs/json/carve.md);
/// <see cref="GuessedBytes"/>: guest bytes read from extents placed on a guess (set by the export).
/// </summary>
public sealed record ExportCarveInfo(double MinConfidence, string FooterUuid, string HeadSource, long HeadPe, long ExtentCount, int PlacedExtents,
    int LowConfidenceExtents, int AmbiguousExtents, bool InCarvedVg)
{
    public long GuessedBytes { get; init; }
}

/// <summary>DIR/manifest.json.</summary>
public sealed record ExportManifest(string Tool, string CreatedUtc, IReadOnlyList<string> Sources, string OutDir, IReadOnlyList<ExportedVdi> Vdis)
{
    public const string FileName = "manifest.json";

    public void Write(string directory) => ExportJson.WriteFile(Path.Combine(directory, FileName), this);
}

/// <summary>The repository's JSON convention (camelCase, kebab-case enums, indented) for files export writes.</summary>
public static class ExportJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    /// <summary>Writes under a temporary name and renames, like the images.</summary>
    public static void WriteFile<T>(string path, T value)
    {
        var temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.vrescue-tmp-{Environment.ProcessId}");
        File.WriteAllText(temp, JsonSerializer.Serialize(value, Options) + "\n");
        File.Move(temp, path, overwrite: true);
    }
}
