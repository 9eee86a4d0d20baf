// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Common;

/// <summary>Bytes that do not form the expected structure. Carries where and what, for the user.</summary>
public class CorruptDataException : Exception
{
    public CorruptDataException(string format, string structure, string code, string message,
        long? absoluteOffset = null, string? field = null, string? stored = null, string? expected = null)
        : base(message)
    {
        Format = format;
        Structure = structure;
        Code = code;
        AbsoluteOffset = absoluteOffset;
        Field = field;
        Stored = stored;
        Expected = expected;
    }

    public string Format { get; }
    public string Structure { get; }
    public string Code { get; }
    public long? AbsoluteOffset { get; }
    public string? Field { get; }
    public string? Stored { get; }
    public string? Expected { get; }

    /// <summary>Throws for the first error-level finding, if any.</summary>
    public static void ThrowIfErrors(string format, string structure, IEnumerable<Finding> findings)
    {
        foreach (var f in findings)
        {
            if (f.Severity == Severity.Error)
            {
                throw new CorruptDataException(format, structure, f.Code, f.Message, f.OffsetBytes, f.Field, f.Stored, f.Expected);
            }
        }
    }
}

/// <summary>Valid data using a feature VRescue does not implement. Never silently dropped.</summary>
public sealed class UnsupportedFormatFeatureException(string format, string feature, string message)
    : NotSupportedException(message)
{
    public string Format { get; } = format;
    public string Feature { get; } = feature;
}
