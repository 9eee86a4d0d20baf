// SPDX-License-Identifier: MIT
using VRescue.TestSupport;

namespace VRescue.Cli.Tests;

/// <summary>The README's first command is the product's front door: it must run, as written, on the bundled sample.</summary>
public class ReadmeCommandTests
{
    [RealFact("gunzip", "bash")]
    public void Readme_first_command_runs_the_main_job_on_the_bundled_sample()
    {
        var readme = File.ReadAllLines(Path.Combine(Repo.Root, "README.md"));
        var block = Array.FindIndex(readme, l => l.StartsWith("```", StringComparison.Ordinal));
        var command = readme[block + 1];
        Assert.Contains("./vrescue", command);

        var output = Repo.Run("bash", $"-c \"cd '{Repo.Root}' && {command.Replace("\"", "\\\"")}\"");
        Assert.Contains("Diagnosis:", output);
        Assert.Contains("healthy", output);
    }

    [RealFact("bash")]
    public void Launcher_works_from_any_working_directory()
    {
        var output = Repo.Run("bash", $"-c \"cd / && '{Path.Combine(Repo.Root, "vrescue")}' --help\"");
        Assert.Contains("probe", output);
    }
}
