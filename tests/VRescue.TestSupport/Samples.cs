// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace VRescue.TestSupport;

/// <summary>
/// The vhd-util samples (tests/fixtures/vhd-util, made by XenServer's blktap vhd-util; see the README there),
/// stored zstd-compressed and expanded on first use into the fixture cache.
/// </summary>
public static class Samples
{
    private static readonly object s_lock = new();

    public static readonly string[] VhdUtilNames = ["dynamic.vhd", "chain-base.vhd", "chain-mid.vhd", "chain-leaf.vhd", "fixed.vhd"];

    /// <summary>Path of an expanded vhd-util sample (all chain members land in one directory).</summary>
    public static string VhdUtilPath(string name)
    {
        var dir = Path.Combine(Repo.FixtureCache, "vhd-util");
        var target = Path.Combine(dir, name);
        lock (s_lock)
        {
            if (!File.Exists(target))
            {
                Directory.CreateDirectory(dir);
                var tmp = target + ".tmp" + Environment.ProcessId;
                Repo.Run("zstd", $"-q -d -f \"{Path.Combine(Repo.Fixtures, "vhd-util", name + ".zst")}\" -o \"{tmp}\"");
                File.Move(tmp, target, overwrite: true);
            }
        }

        return target;
    }

    /// <summary>The .json facts that came with a sample (written by the sample's author from vhd-util output).</summary>
    public static JsonElement VhdUtilFacts(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Fixtures, "vhd-util", Path.ChangeExtension(name, ".json")))).RootElement;
}
