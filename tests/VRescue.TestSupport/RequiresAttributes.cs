// SPDX-License-Identifier: MIT
using Xunit;

namespace VRescue.TestSupport;

/// <summary>
/// A fact that needs real tools, root or generated fixtures. Off CI it is skipped with the reason printed;
/// under CI=true it is never skipped, so a missing prerequisite fails the run instead of hiding it.
/// </summary>
public sealed class RealFactAttribute : FactAttribute
{
    public RealFactAttribute(params string[] tools)
    {
        _tools = tools;
        Skip = Prerequisites.MissingReason(tools, false, null);
    }

    /// <summary>Needs uid 0 (loop devices, lvm on loop devices).</summary>
    public bool Root
    {
        get => _root;
        set { _root = value; Skip = Prerequisites.MissingReason(_tools, value, Fixture); }
    }

    /// <summary>Name of a generated fixture directory under the fixture cache that must exist.</summary>
    public string? Fixture
    {
        get => _fixture;
        set { _fixture = value; Skip = Prerequisites.MissingReason(_tools, Root, value); }
    }

    private readonly string[] _tools;
    private bool _root;
    private string? _fixture;
}

/// <summary>Theory counterpart of <see cref="RealFactAttribute"/>.</summary>
public sealed class RealTheoryAttribute : TheoryAttribute
{
    public RealTheoryAttribute(params string[] tools)
    {
        _tools = tools;
        Skip = Prerequisites.MissingReason(tools, false, null);
    }

    public bool Root
    {
        get => _root;
        set { _root = value; Skip = Prerequisites.MissingReason(_tools, value, Fixture); }
    }

    public string? Fixture
    {
        get => _fixture;
        set { _fixture = value; Skip = Prerequisites.MissingReason(_tools, Root, value); }
    }

    private readonly string[] _tools;
    private bool _root;
    private string? _fixture;
}

public static class Prerequisites
{
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
