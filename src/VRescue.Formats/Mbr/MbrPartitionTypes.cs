// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Mbr;

/// <summary>Names of the MBR partition type bytes seen on XenServer hosts and their neighbours.</summary>
public static class MbrPartitionTypes
{
    public const byte Empty = 0x00;
    public const byte Extended = 0x05;
    public const byte Ntfs = 0x07;
    public const byte ExtendedLba = 0x0F;
    public const byte LinuxSwap = 0x82;
    public const byte Linux = 0x83;
    public const byte LinuxExtended = 0x85;
    public const byte LinuxLvm = 0x8E;
    public const byte GptProtective = 0xEE;
    public const byte EfiSystem = 0xEF;

    /// <summary>True for the container types whose first sector starts an EBR chain (0x05, 0x0F, 0x85).</summary>
    public static bool IsExtended(byte type) => type is Extended or ExtendedLba or LinuxExtended;

    /// <summary>A human name, or "Unknown" for a type byte not in the list.</summary>
    public static string Name(byte type) => type switch
    {
        Empty => "Empty",
        Extended => "Extended",
        Ntfs => "HPFS/NTFS/exFAT",
        ExtendedLba => "W95 Extended (LBA)",
        LinuxSwap => "Linux swap",
        Linux => "Linux",
        LinuxExtended => "Linux extended",
        LinuxLvm => "Linux LVM",
        GptProtective => "GPT protective",
        EfiSystem => "EFI System",
        _ => "Unknown",
    };

    /// <summary>The type byte as printed in reports, e.g. "0x8e".</summary>
    public static string Code(byte type) => $"0x{type:x2}";
}
