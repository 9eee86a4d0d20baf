// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace VRescue.Storage;

/// <summary>
/// O_DIRECT descriptors for Linux x64 and arm64 (open(2) flags: asm-generic/fcntl.h; O_DIRECT differs per
/// architecture, arch/arm64/include/uapi/asm/fcntl.h). Null elsewhere or when the file system refuses it.
/// </summary>
internal static class DirectIo
{
    public const int ReadOnly = 0x0, WriteOnly = 0x1;

    private const int OCloexec = 0x80000, ODirectX64 = 0x4000, ODirectArm64 = 0x10000;

    /// <summary>A descriptor on <paramref name="path"/> opened with <paramref name="access"/> | O_DIRECT | O_CLOEXEC, or null.</summary>
    public static SafeFileHandle? Open(string path, int access)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var direct = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => ODirectX64,
            Architecture.Arm64 => ODirectArm64,
            _ => 0,
        };
        if (direct == 0)
        {
            return null;
        }

        var fd = SysOpen(path, access | OCloexec | direct, 0);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int SysOpen(string path, int flags, int mode);
}
