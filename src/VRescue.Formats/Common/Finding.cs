// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Common;

/// <summary>How bad a finding is. Error means data or structure is unusable as stored.</summary>
public enum Severity
{
    Info,
    Warning,
    Error,
}

/// <summary>
/// One observation about on-disk bytes. <see cref="Code"/> is stable (tests and --json match on it);
/// <see cref="OffsetBytes"/> is absolute within the source being inspected when known.
/// </summary>
public sealed record Finding(
    string Code,
    Severity Severity,
    string Message,
    long? OffsetBytes = null,
    string? Field = null,
    string? Stored = null,
    string? Expected = null)
{
    /// <summary>Same finding moved by <paramref name="baseOffsetBytes"/> (structure-relative to absolute).</summary>
    public Finding Rebase(long baseOffsetBytes) =>
        OffsetBytes is { } o ? this with { OffsetBytes = checked(o + baseOffsetBytes) } : this;
}
