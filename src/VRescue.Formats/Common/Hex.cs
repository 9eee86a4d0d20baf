// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Common;

/// <summary>Formatting helpers for messages: offsets and stored values as a recovery engineer reads them.</summary>
public static class Hex
{
    public static string Offset(long offsetBytes) => $"0x{offsetBytes:X}";

    public static string U32(uint value) => $"0x{value:X8}";
}
