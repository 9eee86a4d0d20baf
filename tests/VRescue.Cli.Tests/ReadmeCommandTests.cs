// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests;

/// <summary>The README's first command is the product's front door: it must run, as written, on the bundled sample.</summary>
public class ReadmeCommandTests
{
    [RealFact("gunzip", "bash", "qemu-img")]
    public void Readme_first_command_recovers_every_vdi_of_the_bundled_sample_exactly()
    {
        var readme = File.ReadAllLines(Path.Combine(Repo.Root, "README.md"));
        var block = Array.FindIndex(readme, l => l.StartsWith("```", StringComparison.Ordinal));
        var command = readme[block + 1];
        Assert.Contains("./vrescue recover", command);

        var output = Repo.Run("bash", $"-c \"cd '{Repo.Root}' && {command.Replace("\"", "\\\"")}\"");
        Assert.Contains("Recovered 3 of 3 VDI(s)", output);

        // Every VDI's guest content equals the ext4 image the generator put into it (samples/sr-sample.json),
        // read back through qemu-img, not through VRescue.
        var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repo.Root, "samples", "sr-sample.json"))).RootElement;
        var outDir = Path.Combine(Repo.Root, "recovered");
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json"))).RootElement;
        var files = manifest.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!, v => v.GetProperty("file").GetString()!);
        foreach (var vdi in sample.GetProperty("vdis").EnumerateArray())
        {
            var raw = Path.Combine(Path.GetTempPath(), $"vrescue-readme-{Guid.NewGuid():N}.raw");
            Repo.Run("qemu-img", $"convert -f vpc -O raw \"{Path.Combine(outDir, files[vdi.GetProperty("uuid").GetString()!])}\" {raw}");
            try
            {
                Assert.Equal(vdi.GetProperty("sourceExt4Sha256").GetString(), Repo.Sha256File(raw));
            }
            finally
            {
                File.Delete(raw);
            }
        }
    }

    [RealFact("bash")]
    public void Launcher_works_from_any_working_directory()
    {
        var output = Repo.Run("bash", $"-c \"cd / && '{Path.Combine(Repo.Root, "vrescue")}' --help\"");
        Assert.Contains("probe", output);
    }
}
