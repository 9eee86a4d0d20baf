// SPDX-License-Identifier: MIT
namespace VRescue.Guard;

/// <summary>The guest read-only watchdog (issue 5) grows here.</summary>
public static class GuardInfo
{
    public const string Status = "not yet implemented";
}
