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

    /// <summary>
    /// On a terminal (a real pty from util-linux `script`), export draws a progress bar with throughput on stderr; with
    /// --json the same run prints only the JSON document. In this class because both runs go through the launcher.
    /// </summary>
    [RealFact("script", "bash", Fixture = "sample")]
    public void Export_on_a_terminal_shows_progress_with_throughput_and_json_stays_clean()
    {
        var image = new SrFixture("sample").ImagePath;
        var launcher = Path.Combine(Repo.Root, "vrescue");
        var outDir = Path.Combine(Path.GetTempPath(), $"vrescue-tty-{Guid.NewGuid():N}");
        try
        {
            // script -q: no banner; -e: its exit code is the command's; -c: the command; /dev/null: no typescript file.
            var tty = Repo.Run("script", $"-qec \"'{launcher}' export '{image}' --out '{outDir}/human' --format raw\" /dev/null");
            Assert.Matches(@"\[1/\d+\] .+ \[#{30}\] 100% [\d.]+ \w+/[\d.]+ \w+ [\d.]+ \w+/s", tty);
            Assert.Contains("\r", tty, StringComparison.Ordinal);

            var json = Repo.Run("script", $"-qec \"'{launcher}' export '{image}' --out '{outDir}/json' --format raw --json\" /dev/null");
            Assert.DoesNotMatch(@"\[#*\.*\] +\d+%", json);
            // .NET switches a terminal to keypad-transmit mode (ESC [?1h ESC =) before the first byte; a redirected
            // stdout never gets it, the pty does.
            Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(json[json.IndexOf('{', StringComparison.Ordinal)..]).RootElement.GetProperty("vdis").ValueKind);
        }
        finally
        {
            if (Directory.Exists(outDir))
            {
                Directory.Delete(outDir, recursive: true);
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
