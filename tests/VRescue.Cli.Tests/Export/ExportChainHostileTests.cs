// SPDX-License-Identifier: MIT
using VRescue.Formats.Vhd;
using VRescue.TestSupport;

namespace VRescue.Cli.Tests.Export;

/// <summary>A VHD chain that loops back on itself inside a real SR image: that VDI partial with the cycle named, the others unharmed, no hang.</summary>
public sealed class ExportChainHostileTests : IDisposable
{
    private const long ExtentBytes = 4L << 20;
    private const string Leaf = "d4e5f6a7-0005-4b8c-9d0e-1f2a3b4c5d6e";
    private readonly string _dir = Directory.CreateTempSubdirectory("vrescue-selfparent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [RealFact(Fixture = "sr-export")]
    public void Differencing_vhd_that_names_itself_as_parent_is_written_partial_alone_with_a_chain_finding()
    {
        var fx = new SrFixture("sr-export");
        var image = Path.Combine(_dir, "sr.img");
        Repo.Run("cp", $"--sparse=always \"{fx.ImagePath}\" \"{image}\"");

        // The leaf LV's first extent, from lvs --segments and pvs (the tools' layout, not ours).
        var seg = fx.LvmRows("lvs.json", "seg").Single(s => s.GetProperty("lv_name").GetString() == "VHD-" + Leaf && s.GetProperty("seg_start_pe").GetString() == "0");
        var range = seg.GetProperty("seg_pe_ranges").GetString()!;
        var pe = long.Parse(range[(range.LastIndexOf(':') + 1)..].Split('-')[0]);
        var lvStart = SrFixture.LvmBytes(Assert.Single(fx.LvmRows("pvs.json", "pv")), "pe_start") + (pe * ExtentBytes);

        var bytes = new byte[512 + 1024];
        using (var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = lvStart;
            f.ReadExactly(bytes);
            var footer = VhdFooter.Decode(bytes.AsSpan(0, 512));
            Assert.Equal(VhdDiskType.Differencing, footer.DiskType);
            var header = VhdDynamicHeader.Decode(bytes.AsSpan(512)) with { ParentUuid = footer.Uuid };
            header.Encode(bytes.AsSpan(512));
            f.Position = lvStart + 512;
            f.Write(bytes.AsSpan(512));
        }

        var hash = Repo.Sha256File(image);
        var r = Cli.Run("export", image, "--out", Path.Combine(_dir, "out"), "--vdi", Leaf, "--vdi", "d4e5f6a7-0006-4b8c-9d0e-1f2a3b4c5d6e", "--format", "raw", "--json");
        Assert.Equal(hash, Repo.Sha256File(image));
        Assert.NotEqual(ExitCodes.Ok, r.ExitCode);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
        Assert.True(r.Stdout.Length > 0, $"exit {r.ExitCode}: {r.Stderr}");
        var vdis = r.Json.GetProperty("vdis").EnumerateArray().ToDictionary(v => v.GetProperty("uuid").GetString()!);
        // Its own sectors are written (the repair view, as `vhd repair` gives a differencing disk without its parent),
        // every range that would come from the parent listed as unreadable, and the cycle named.
        Assert.Equal("partial", vdis[Leaf].GetProperty("status").GetString());
        Assert.Contains(vdis[Leaf].GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("VHD_CHAIN_CYCLE", StringComparison.Ordinal));
        Assert.NotEmpty(vdis[Leaf].GetProperty("unreadableRanges").EnumerateArray());
        Assert.Equal("exported", vdis["d4e5f6a7-0006-4b8c-9d0e-1f2a3b4c5d6e"].GetProperty("status").GetString());
    }
}
