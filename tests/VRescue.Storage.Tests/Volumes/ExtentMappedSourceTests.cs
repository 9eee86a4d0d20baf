// SPDX-License-Identifier: MIT
using VRescue.Storage;
using VRescue.Storage.Volumes;

namespace VRescue.Storage.Tests.Volumes;

public sealed class ExtentMappedSourceTests : IDisposable
{
    private const int ExtentBytes = 4096;
    private const int PeStartBytes = 1024;
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"vrescue-ems-{Guid.NewGuid():N}.img");
    private readonly FileBlockSource _pv;

    public ExtentMappedSourceTests()
    {
        // PV of 8 extents after pe_start; each PE filled with its own number so a wrong mapping shows.
        var bytes = new byte[PeStartBytes + (8 * ExtentBytes)];
        for (var pe = 0; pe < 8; pe++)
        {
            bytes.AsSpan(PeStartBytes + (pe * ExtentBytes), ExtentBytes).Fill((byte)(0x10 + pe));
        }

        File.WriteAllBytes(_path, bytes);
        _pv = FileBlockSource.Open(_path);
    }

    [Fact]
    public void Logical_extents_read_from_their_physical_extents_across_segment_boundaries()
    {
        // LE 0-1 -> PE 5-6, LE 2 -> PE 1 (an interleaved LV, like lvextend after another LV grew).
        var lv = new ExtentMappedSource("lv", ExtentBytes, 3, [new ExtentRun(0, 2, _pv, PeStartBytes, 5), new ExtentRun(2, 1, _pv, PeStartBytes, 1)]);
        var buffer = new byte[3 * ExtentBytes];
        lv.ReadExactlyAt(0, buffer);
        Assert.All(buffer.AsSpan(0, ExtentBytes).ToArray(), b => Assert.Equal(0x15, b));
        Assert.All(buffer.AsSpan(ExtentBytes, ExtentBytes).ToArray(), b => Assert.Equal(0x16, b));
        Assert.All(buffer.AsSpan(2 * ExtentBytes).ToArray(), b => Assert.Equal(0x11, b));

        var straddle = new byte[2];
        lv.ReadExactlyAt((2 * ExtentBytes) - 1, straddle);
        Assert.Equal([0x16, 0x11], straddle);
    }

    [Fact]
    public void Unmapped_extents_read_as_zeros_and_are_listed()
    {
        var lv = new ExtentMappedSource("lv", ExtentBytes, 3, [new ExtentRun(0, 1, _pv, PeStartBytes, 0), new ExtentRun(2, 1, _pv, PeStartBytes, 2)]);
        var buffer = new byte[ExtentBytes];
        lv.ReadExactlyAt(ExtentBytes, buffer);
        Assert.All(buffer, b => Assert.Equal(0, b));
        Assert.Equal([1L], lv.UnmappedExtents());
    }

    [Fact]
    public void Extent_beyond_the_end_of_a_truncated_pv_raises_a_read_error_with_offsets()
    {
        var lv = new ExtentMappedSource("lv", ExtentBytes, 1, [new ExtentRun(0, 1, _pv, PeStartBytes, 20)]);
        var e = Assert.Throws<SourceReadException>(() => lv.ReadExactlyAt(0, new byte[16]));
        Assert.Contains("truncated PV", e.Message);
        Assert.Contains("extent 0", e.Message);
    }

    public void Dispose()
    {
        _pv.Dispose();
        File.Delete(_path);
    }
}
