// SPDX-License-Identifier: MIT
using System.Diagnostics;
using VRescue.Formats.Common;
using VRescue.Formats.Vhd;
using VRescue.Recovery.Vhd;
using VRescue.Storage;

namespace VRescue.Recovery.Tests.Vhd;

/// <summary>Hostile VHDs: findings, no crash, bounded time and memory.</summary>
public sealed class VhdHostileRepairTests
{
    /// <summary>A hang guard, not a speed check: bounded work finishes far below it even on a loaded machine.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    /// <summary>A small dynamic VHD: footer copy, header at 512, BAT at 1536, one 2 MiB block at sector 4, footer.</summary>
    private static byte[] Build(Func<VhdFooter, VhdFooter>? footerEdit = null, Func<VhdDynamicHeader, VhdDynamicHeader>? headerEdit = null, uint entry0 = 4)
    {
        var image = new byte[(4 + 4097 + 1) * 512];
        var footer = footerEdit?.Invoke(new VhdFooter { DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = 4 << 20, DataOffsetBytes = 512, Uuid = Guid.NewGuid() })
            ?? new VhdFooter { DiskType = VhdDiskType.Dynamic, CurrentSizeBytes = 4 << 20, DataOffsetBytes = 512, Uuid = Guid.NewGuid() };
        var header = headerEdit?.Invoke(new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = 2 }) ?? new VhdDynamicHeader { TableOffsetBytes = 1536, MaxTableEntries = 2 };
        footer.Encode(image);
        footer.Encode(image.AsSpan(image.Length - 512));
        header.Encode(image.AsSpan(512));
        VhdBat.FromEntries([entry0, VhdBat.Unallocated], 1536).Encode(image.AsSpan(1536, 512));
        image.AsSpan(4 * 512, 512).Fill(0xFF);
        image.AsSpan(5 * 512, 2 << 20).Fill(0x5A);
        return image;
    }

    public static TheoryData<string> Cases => new() { "max-bat", "block-size-0", "block-size-2^31", "bat-into-header", "garbage-locators", "locators-over-100k-garbage", "huge-size", "all-ff", "all-zero", "random" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hostile_vhd_gives_findings_without_crash_in_bounded_time(string which)
    {
        var bytes = which switch
        {
            "max-bat" => Build(headerEdit: h => h with { MaxTableEntries = 0xFFFFFFFF }),
            "block-size-0" => Build(headerEdit: h => h with { BlockSizeBytes = 0 }),
            "block-size-2^31" => Build(headerEdit: h => h with { BlockSizeBytes = 1u << 31 }),
            "bat-into-header" => Build(entry0: 1),
            "garbage-locators" => Build(footerEdit: f => f with { DiskType = VhdDiskType.Differencing },
                headerEdit: h => h with { ParentUuid = Guid.NewGuid(), ParentLocators = Enumerable.Range(0, 8).Select(i => new VhdParentLocator(0x4D616358, 0xFFFFFFFF, 0xFFFFFFF0, 7, 0xFFFFFFFFFFFF0000 + (ulong)i)).ToArray() }),
            "locators-over-100k-garbage" => GarbageLocators(),
            "huge-size" => Build(footerEdit: f => f with { CurrentSizeBytes = VhdFooter.MaxCurrentSizeBytes }),
            "all-ff" => Enumerable.Repeat((byte)0xFF, 3 << 20).ToArray(),
            "all-zero" => new byte[3 << 20],
            _ => RandomBytes(),
        };

        var watch = Stopwatch.StartNew();
        var before = GC.GetTotalAllocatedBytes(precise: false);
        var plan = VhdRecoveryAnalyzer.Analyze(new MemoryBlockSource(bytes, which));
        if (plan.IsVhd && plan.Footer!.DiskType != VhdDiskType.Differencing)
        {
            var guest = plan.OpenGuest();
            var buffer = new byte[1 << 20];
            guest.ReadAt(0, buffer);
            GuestFilesystemJudge.Judge(guest, plan.BadRanges, "x");
        }

        Assert.True(watch.Elapsed < HangGuard, $"{which} took {watch.Elapsed}");
        Assert.True(GC.GetTotalAllocatedBytes(precise: false) - before < 512L << 20, "allocations bounded");
        Assert.True(!plan.IsVhd || plan.Findings.Count > 0 || which == "huge-size");
        if (which == "locators-over-100k-garbage")
        {
            Assert.Contains(plan.Findings, f => f.Code == "VHD_LOCATOR_RANGE" && f.Message.Contains("parent locator 0", StringComparison.Ordinal));
            Assert.Contains(plan.Findings, f => f.Code == "VHD_LOCATOR_CODE");
        }
    }

    [Theory]
    [InlineData(VhdDiskType.Dynamic)]
    [InlineData(VhdDiskType.Differencing)]
    public void Vhd_cut_inside_its_dynamic_header_is_checked_and_repaired_without_a_header(VhdDiskType type)
    {
        // Fuzz find (vhd-util dynamic.vhd cut at 609 bytes, chain-leaf.vhd at 1288): the footer copy survives, the header
        // is cut and no BAT is left, so the plan has a footer and no header (VHD_BAT_NOT_FOUND). Reading its guest divided
        // by a block size of 0 (check and repair: internal error); repairing the differencing one dereferenced the header.
        var bytes = Build(footerEdit: f => f with { DiskType = type }, headerEdit: h => h with { ParentUuid = Guid.NewGuid(), ParentUnicodeName = "parent.vhd" })[..900];
        var dir = Directory.CreateTempSubdirectory("vrescue-cut-").FullName;
        try
        {
            var input = Path.Combine(dir, "cut.vhd");
            File.WriteAllBytes(input, bytes);
            using var target = VhdTarget.Open(input, null);
            var (report, plan, _) = VhdInspection.Check(target);
            Assert.Contains(plan.Findings, f => f.Code == "VHD_BAT_NOT_FOUND");
            Assert.Equal(VhdVerdict.DataLoss, report.Verdict);
            Assert.Equal([new VhdBadRange(0, 4 << 20, "BAT not found")], report.BadRanges);

            var output = Path.Combine(dir, "out.vhd");
            if (type == VhdDiskType.Differencing)
            {
                var e = Assert.Throws<UnsupportedFormatFeatureException>(() => VhdInspection.Repair(target, output, "vhd", "test"));
                Assert.Contains("parent's identity is lost", e.Message, StringComparison.Ordinal);
            }
            else
            {
                VhdInspection.Repair(target, output, "vhd", "test");
                Assert.True(File.Exists(output + ".badmap"));
                var again = VhdRecoveryAnalyzer.Analyze(new MemoryBlockSource(File.ReadAllBytes(output)));
                Assert.Equal(4L << 20, again.VirtualSizeBytes);
                Assert.Empty(again.Placements);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Hundred_thousand_garbage_bytes_after_the_header_and_a_hostile_bat_are_scanned_once()
    {
        var bytes = Build(headerEdit: h => h with { TableOffsetBytes = 0x7FFFFFFF_FFFFFE00 });
        var plan = VhdRecoveryAnalyzer.Analyze(new MemoryBlockSource(bytes));
        Assert.True(plan.IsVhd);
        Assert.Contains(plan.Findings, f => f.Code == "VHD_TABLE_OFFSET" || f.Code == "VHD_HEADER_REBUILT");
    }

    /// <summary>
    /// A differencing VHD whose 8 parent locators (every platform code) point into 100,000 random bytes over the data
    /// area: one 100,000 bytes long (over the 64 KiB cap), the others overlapping slices of the garbage.
    /// </summary>
    private static byte[] GarbageLocators()
    {
        const int garbageAt = 5 * 512, garbageBytes = 100_000;
        uint[] codes = [VhdParentLocator.CodeMacX, VhdParentLocator.CodeW2ku, VhdParentLocator.CodeW2ru, VhdParentLocator.CodeWi2r,
            VhdParentLocator.CodeWi2k, VhdParentLocator.CodeMac, 0x12345678, VhdParentLocator.CodeW2ku];
        var locators = codes.Select((c, i) => new VhdParentLocator(c, garbageBytes, i == 0 ? garbageBytes : (uint)(garbageBytes / (i + 1)), 0, (ulong)(garbageAt + (i * 512)))).ToArray();
        var bytes = Build(footerEdit: f => f with { DiskType = VhdDiskType.Differencing },
            headerEdit: h => h with { ParentUuid = Guid.NewGuid(), ParentLocators = locators });
        new Random(5).NextBytes(bytes.AsSpan(garbageAt, garbageBytes));
        return bytes;
    }

    private static byte[] RandomBytes()
    {
        var b = new byte[5 << 20];
        new Random(3).NextBytes(b);
        return b;
    }
}
