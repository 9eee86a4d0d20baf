// SPDX-License-Identifier: MIT
namespace VRescue.Cli;

/// <summary>Named process exit codes (documented in README and docs/json).</summary>
public static class ExitCodes
{
    /// <summary>Everything read and healthy.</summary>
    public const int Ok = 0;

    /// <summary>Read, with warnings worth a look (nothing lost).</summary>
    public const int Warnings = 1;

    /// <summary>Damage found: some structure is unusable as stored.</summary>
    public const int Damaged = 2;

    /// <summary>Nothing VRescue recognises (not an SR, empty, unsupported).</summary>
    public const int NotRecognised = 3;

    /// <summary>The source could not be opened or read.</summary>
    public const int IoError = 4;

    /// <summary>Bad command line.</summary>
    public const int Usage = 64;

    /// <summary>A bug in VRescue: reported without a stack trace (set VRESCUE_DEBUG=1 to see it).</summary>
    public const int Internal = 70;
}
