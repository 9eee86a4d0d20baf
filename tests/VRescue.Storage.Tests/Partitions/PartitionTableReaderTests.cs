// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Formats.Gpt;
using VRescue.Storage.Partitions;
using VRescue.TestSupport;

namespace VRescue.Storage.Tests.Partitions;

public sealed class PartitionTableReaderTests : IDisposable
{
    private const long LastLbaOffset = PartitionImages.DiskBytes - 512;
    private readonly PartitionImages _images = new();

    public void Dispose() => _images.Dispose();

    private static PartitionTableReport Read(string path)
    {
        using var disk = FileBlockSource.Open(path);
        return PartitionTableReader.Read(disk);
    }

    private static string[] Codes(PartitionTableReport r) => r.Findings.Select(f => f.Code).Order().ToArray();

    private static void AssertGptMatchesSfdisk(string pathBeforeDamage, PartitionTableReport r)
    {
        var expected = PartitionImages.SfdiskPartitions(pathBeforeDamage);
        Assert.Equal(PartitionTableKind.Gpt, r.Kind);
        Assert.Equal(expected.Count, r.Partitions.Count);
        foreach (var (e, p) in expected.Zip(r.Partitions))
        {
            Assert.Equal(e.Number, p.Index);
            Assert.Equal(e.Start * 512, p.StartBytes);
            Assert.Equal(e.Size * 512, p.SizeBytes);
            Assert.Equal(Guid.Parse(e.Type), p.TypeGuid);
            Assert.Equal(Guid.Parse(e.Uuid!), p.UniqueGuid);
            Assert.Equal(e.Name ?? "", p.Name);
        }
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Gpt_partitions_match_what_sfdisk_reports()
    {
        var path = _images.Gpt();
        var r = Read(path);

        AssertGptMatchesSfdisk(path, r);
        Assert.True(r.PrimaryValid);
        Assert.True(r.BackupValid);
        Assert.Empty(r.Findings);
        Assert.Equal(["Linux LVM", "Linux filesystem"], r.Partitions.Select(p => p.TypeName));
        Assert.Equal(["8e00", "8300"], r.Partitions.Select(p => p.TypeCode));
    }

    [RealFact("sfdisk")]
    public void Mbr_primary_extended_and_logical_partitions_match_what_sfdisk_reports()
    {
        var path = _images.Mbr();
        var r = Read(path);

        var expected = PartitionImages.SfdiskPartitions(path);
        Assert.Equal(PartitionTableKind.Mbr, r.Kind);
        Assert.True(r.PrimaryValid);
        Assert.False(r.BackupValid);
        Assert.Empty(r.Findings);
        Assert.Equal(expected.Select(e => (e.Number, e.Start * 512, e.Size * 512, "0x" + e.Type.PadLeft(2, '0'))),
            r.Partitions.Select(p => (p.Index, p.StartBytes, p.SizeBytes, p.TypeCode)));
        Assert.Equal("Linux LVM", r.Partitions[0].TypeName);
        Assert.Null(r.Partitions[0].TypeGuid);
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Backup_gpt_is_used_when_primary_header_is_zeroed()
    {
        var reference = _images.Gpt("reference.img");
        var path = Path.Combine(_images.Dir, "damaged.img");
        File.Copy(reference, path);
        PartitionImages.Fill(path, 512, 512);

        var r = Read(path);

        AssertGptMatchesSfdisk(reference, r);
        Assert.False(r.PrimaryValid);
        Assert.True(r.BackupValid);
        Assert.Equal(["GPT_BAD_SIGNATURE", "GPT_PRIMARY_INVALID"], Codes(r));
        Assert.Equal(Severity.Warning, r.Findings.Single(f => f.Code == "GPT_PRIMARY_INVALID").Severity);
        Assert.Equal(512, r.Findings.Single(f => f.Code == "GPT_BAD_SIGNATURE").OffsetBytes);
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Backup_gpt_is_used_when_primary_entry_array_crc_is_wrong()
    {
        var reference = _images.Gpt("reference.img");
        var path = Path.Combine(_images.Dir, "damaged.img");
        File.Copy(reference, path);
        PartitionImages.FlipByte(path, 1024 + 56); // first character of partition 1's name

        var r = Read(path);

        AssertGptMatchesSfdisk(reference, r);
        Assert.Equal(["GPT_BAD_ENTRY_ARRAY_CRC", "GPT_PRIMARY_INVALID"], Codes(r));
        Assert.Equal(512 + GptHeaderLayout.PartitionEntryArrayCrc32Offset, r.Findings.Single(f => f.Code == "GPT_BAD_ENTRY_ARRAY_CRC").OffsetBytes);
    }

    [RealFact("sgdisk")]
    public void Both_gpt_headers_zeroed_gives_errors_and_no_partitions()
    {
        var path = _images.Gpt();
        PartitionImages.Fill(path, 512, 512);
        PartitionImages.Fill(path, LastLbaOffset, 512);

        var r = Read(path);

        Assert.Equal(PartitionTableKind.Gpt, r.Kind); // the protective MBR still says GPT
        Assert.False(r.PrimaryValid);
        Assert.False(r.BackupValid);
        Assert.Empty(r.Partitions);
        Assert.Equal(["GPT_BACKUP_INVALID", "GPT_BAD_SIGNATURE", "GPT_BAD_SIGNATURE", "GPT_PRIMARY_INVALID"], Codes(r));
        Assert.All(r.Findings, f => Assert.Equal(Severity.Error, f.Severity));
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Gpt_is_read_with_a_warning_when_only_the_protective_mbr_is_zeroed()
    {
        var reference = _images.Gpt("reference.img");
        var path = Path.Combine(_images.Dir, "damaged.img");
        File.Copy(reference, path);
        PartitionImages.Fill(path, 0, 512);

        var r = Read(path);

        AssertGptMatchesSfdisk(reference, r);
        Assert.True(r.PrimaryValid && r.BackupValid);
        Assert.Equal(["GPT_PROTECTIVE_MBR_MISSING"], Codes(r));
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Backup_gpt_is_reported_invalid_when_its_header_is_zeroed()
    {
        var path = _images.Gpt();
        var expected = PartitionImages.SfdiskPartitions(path);
        PartitionImages.Fill(path, LastLbaOffset, 512);

        var r = Read(path);

        Assert.True(r.PrimaryValid);
        Assert.False(r.BackupValid);
        Assert.Equal(expected.Count, r.Partitions.Count);
        Assert.Equal(["GPT_BACKUP_INVALID", "GPT_BAD_SIGNATURE"], Codes(r));
        Assert.Equal(LastLbaOffset, r.Findings.Single(f => f.Code == "GPT_BAD_SIGNATURE").OffsetBytes);
    }

    [RealFact("sgdisk")]
    public void Backup_header_differing_from_the_primary_is_reported()
    {
        var path = _images.Gpt();
        // sgdisk -U changes the disk GUID in both headers; then restore the old backup header so they disagree.
        var oldBackup = File.ReadAllBytes(path)[^512..];
        Repo.Run("sgdisk", $"-U R \"{path}\"");
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.Position = LastLbaOffset;
            f.Write(oldBackup);
        }

        var r = Read(path);

        Assert.True(r.PrimaryValid && r.BackupValid);
        var mismatch = Assert.Single(r.Findings);
        Assert.Equal(("GPT_BACKUP_MISMATCH", "DiskGUID"), (mismatch.Code, mismatch.Field));
        Assert.Equal(LastLbaOffset + GptHeaderLayout.DiskGuidOffset, mismatch.OffsetBytes);
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Dos_label_written_over_a_gpt_disk_without_wiping_is_read_as_mbr_with_a_stale_gpt_warning()
    {
        var path = _images.Gpt();
        _images.Mbr(wipe: "never", over: path);

        var r = Read(path);

        Assert.Equal(PartitionTableKind.Mbr, r.Kind);
        Assert.Equal(PartitionImages.SfdiskPartitions(path).Select(e => e.Start * 512), r.Partitions.Select(p => p.StartBytes));
        Assert.Equal(["PART_STALE_GPT", "PART_STALE_GPT"], Codes(r));
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Dos_label_written_over_a_gpt_disk_by_default_sfdisk_is_a_clean_mbr()
    {
        var path = _images.Gpt();
        _images.Mbr(over: path);

        var r = Read(path);

        Assert.Equal(PartitionTableKind.Mbr, r.Kind);
        Assert.Empty(r.Findings);
    }

    [RealFact("sgdisk", "sfdisk")]
    public void Truncated_gpt_image_lists_partitions_and_reports_the_lost_backup()
    {
        var reference = _images.Gpt("reference.img");
        var path = Path.Combine(_images.Dir, "truncated.img");
        File.Copy(reference, path);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(PartitionImages.DiskBytes / 2);
        }

        var r = Read(path);

        AssertGptMatchesSfdisk(reference, r);
        Assert.True(r.PrimaryValid);
        Assert.False(r.BackupValid);
        Assert.Contains("GPT_BACKUP_BEYOND_END", Codes(r));
        Assert.Contains("GPT_BACKUP_INVALID", Codes(r));
        Assert.Contains("GPT_USABLE_RANGE_BEYOND_DISK", Codes(r));
        // Partition 2 runs to the old end of the disk; sfdisk on the intact image says where it starts.
        var second = PartitionImages.SfdiskPartitions(reference)[1];
        Assert.Equal(second.Start * 512, r.Findings.Single(f => f.Code == "GPT_PARTITION_BEYOND_END").OffsetBytes);
    }

    [RealFact("sgdisk")]
    public void Grown_disk_finds_the_backup_where_the_primary_points()
    {
        var path = _images.Gpt();
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(PartitionImages.DiskBytes + 16 * 1024 * 1024);
        }

        var r = Read(path);

        Assert.True(r.PrimaryValid && r.BackupValid);
        Assert.DoesNotContain("GPT_BACKUP_INVALID", Codes(r));
        Assert.Contains("GPT_ALTERNATE_LBA_UNEXPECTED", Codes(r));
    }

    [RealFact("sgdisk")]
    public void Reading_does_not_change_the_image()
    {
        var path = _images.Gpt();
        PartitionImages.Fill(path, 512, 512); // a damaged disk is where a writer would be tempted
        var before = Repo.Sha256File(path);
        var stamp = File.GetLastWriteTimeUtc(path);

        Read(path);

        Assert.Equal(before, Repo.Sha256File(path));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));
    }
}
