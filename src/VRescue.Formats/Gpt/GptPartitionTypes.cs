// SPDX-License-Identifier: MIT
namespace VRescue.Formats.Gpt;

/// <summary>Partition type GUIDs VRescue names, with the short codes sgdisk uses for them.</summary>
public static class GptPartitionTypes
{
    public static readonly Guid LinuxLvm = new("E6D6D379-F507-44C2-A23C-238F2A3DF928");
    public static readonly Guid LinuxFilesystem = new("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    public static readonly Guid LinuxSwap = new("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F");
    public static readonly Guid EfiSystem = new("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    public static readonly Guid BiosBoot = new("21686148-6449-6E6F-744E-656564454649");
    public static readonly Guid MicrosoftBasicData = new("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");

    private static readonly (Guid Type, string Name, string SgdiskCode)[] s_known =
    [
        (LinuxLvm, "Linux LVM", "8e00"),
        (LinuxFilesystem, "Linux filesystem", "8300"),
        (LinuxSwap, "Linux swap", "8200"),
        (EfiSystem, "EFI System", "ef00"),
        (BiosBoot, "BIOS boot partition", "ef02"),
        (MicrosoftBasicData, "Microsoft basic data", "0700"),
    ];

    /// <summary>A human name, or "Unknown" for a GUID not in the list.</summary>
    public static string Name(Guid type) => Find(type)?.Name ?? "Unknown";

    /// <summary>The sgdisk type code (e.g. "8e00"), or null for a GUID not in the list.</summary>
    public static string? SgdiskCode(Guid type) => Find(type)?.SgdiskCode;

    private static (Guid Type, string Name, string SgdiskCode)? Find(Guid type)
    {
        foreach (var k in s_known)
        {
            if (k.Type == type)
            {
                return k;
            }
        }

        return null;
    }
}
