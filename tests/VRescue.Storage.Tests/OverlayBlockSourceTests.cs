// SPDX-License-Identifier: MIT
namespace VRescue.Storage.Tests;

public class OverlayBlockSourceTests
{
    /// <summary>Every read window, against a copy of the bytes with the patch applied by hand.</summary>
    [Fact]
    public void Reads_show_the_patch_in_every_window_and_leave_the_source_unchanged()
    {
        var bytes = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        var original = bytes.ToArray();
        var patch = Enumerable.Repeat((byte)0xAB, 600).ToArray();
        var expected = bytes.ToArray();
        patch.CopyTo(expected, 1000);
        var source = new OverlayBlockSource(new MemoryBlockSource(bytes), 1000, patch);

        foreach (var (offset, length) in new[] { (0, 4096), (0, 1000), (990, 20), (1200, 100), (1590, 20), (1600, 500), (4000, 200) })
        {
            var buffer = new byte[length];
            var n = source.ReadAt(offset, buffer);
            Assert.Equal(Math.Min(length, 4096 - offset), n);
            Assert.Equal(expected.AsSpan(offset, n).ToArray(), buffer[..n]);
        }

        Assert.Equal(original, bytes);
    }
}
