// SPDX-License-Identifier: MIT
using Xunit;

namespace VRescue.TestSupport;

/// <summary>
/// A fact that needs real tools, root or generated fixtures. Off CI it is skipped with the reason printed;
/// under CI=true it is never skipped, so a missing prerequisite fails the run instead of hiding it.
/// </summary>
public sealed class RealFactAttribute(params string[] tools) : FactAttribute
{
    private readonly Prerequisites.Needs _needs = new(tools);

    /// <summary>Needs uid 0 (loop devices, lvm on loop devices).</summary>
    public bool Root { get => _needs.Root; set => _needs.Root = value; }

    /// <summary>Name of a generated fixture directory under the fixture cache that must exist.</summary>
    public string? Fixture { get => _needs.Fixture; set => _needs.Fixture = value; }

    /// <summary>An explicit skip, else the reason a prerequisite is missing (never under CI=true).</summary>
    public override string? Skip { get => base.Skip ?? _needs.Reason(); set => base.Skip = value; }
}

/// <summary>Theory counterpart of <see cref="RealFactAttribute"/>.</summary>
public sealed class RealTheoryAttribute(params string[] tools) : TheoryAttribute
{
    private readonly Prerequisites.Needs _needs = new(tools);

    public bool Root { get => _needs.Root; set => _needs.Root = value; }

    public string? Fixture { get => _needs.Fixture; set => _needs.Fixture = value; }

    /// <summary>An explicit skip, else the reason a prerequisite is missing (never under CI=true).</summary>
    public override string? Skip { get => base.Skip ?? _needs.Reason(); set => base.Skip = value; }
}

public static class Prerequisites
{
    /// <summary>What a test needs; the attributes above share it.</summary>
    public sealed class Needs(string[] tools)
    {
        public bool Root { get; set; }

        public string? Fixture { get; set; }

        public string? Reason() => MissingReason(tools, Root, Fixture);
    }

    /// <summary>Null when everything is there (or under CI); otherwise a printed reason to skip.</summary>
    public static string? MissingReason(string[] tools, bool root, string? fixture)
    {
        if (Repo.IsCi)
        {
            return null;
        }

        var missing = new List<string>();
        foreach (var t in tools)
        {
            if (Repo.Which(t) is null)
            {
                missing.Add($"tool '{t}' not installed (./test.sh installs it)");
            }
        }

        if (root && Environment.UserName != "root")
        {
            missing.Add("needs root for loop devices");
        }

        if (fixture is not null && !Directory.Exists(Path.Combine(Repo.FixtureCache, fixture)))
        {
            missing.Add($"fixture '{fixture}' not generated (run tests/fixtures/generate.sh)");
        }

        if (missing.Count == 0)
        {
            return null;
        }

        var reason = "SKIPPED: " + string.Join("; ", missing);
        Console.Error.WriteLine(reason);
        return reason;
    }
}
