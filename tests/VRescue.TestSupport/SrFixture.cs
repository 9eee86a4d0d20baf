// SPDX-License-Identifier: MIT
using System.Text.Json;

namespace VRescue.TestSupport;

/// <summary>
/// A generated SR fixture (tests/fixtures/generate.sh): the image and the facts the real tools reported for it
/// (lvs/pvs/vgs JSON, sfdisk, qemu-img info, vhdiinfo) plus sr.json with the generator's inputs.
/// </summary>
public sealed class SrFixture
{
    public SrFixture(string name)
    {
        Name = name;
        Directory = Path.Combine(Repo.FixtureCache, name);
        Sr = Load("sr.json");
    }

    public string Name { get; }

    public string Directory { get; }

    public string ImagePath => Path.Combine(Directory, Sr.GetProperty("imageFile").GetString()!);

    /// <summary>sr.json: srUuid, vgName, names put into MGT, per-VDI facts.</summary>
    public JsonElement Sr { get; }

    public JsonElement Load(string file) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, file))).RootElement;

    /// <summary>Rows of an lvm `--reportformat json` file: report[0].&lt;key&gt;[].</summary>
    public IReadOnlyList<JsonElement> LvmRows(string file, string key) =>
        Load(file).GetProperty("report")[0].GetProperty(key).EnumerateArray().ToList();

    /// <summary>"4194304B" (lvm --units b) as a number.</summary>
    public static long LvmBytes(JsonElement row, string field) => long.Parse(row.GetProperty(field).GetString()!.TrimEnd('B'));

    public static long LvmNumber(JsonElement row, string field) => long.Parse(row.GetProperty(field).GetString()!);

    /// <summary>A "Name : value" line of a vhdiinfo text report.</summary>
    public string VhdiInfo(string vdiUuid, string field)
    {
        foreach (var line in File.ReadLines(Path.Combine(Directory, "vdis", vdiUuid + ".vhdiinfo.txt")))
        {
            var parts = line.Split(':', 2);
            if (parts.Length == 2 && parts[0].Trim() == field)
            {
                return parts[1].Trim();
            }
        }

        throw new InvalidOperationException($"vhdiinfo of {vdiUuid} has no '{field}'");
    }
}
