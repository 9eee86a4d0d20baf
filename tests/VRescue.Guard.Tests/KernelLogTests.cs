// SPDX-License-Identifier: MIT
using VRescue.Formats.Common;
using VRescue.Guard.Kernel;

namespace VRescue.Guard.Tests;

public class KernelLogTests
{
    [Fact]
    public void Kmsg_record_prefix_and_continuation_lines_are_parsed()
    {
        var r = KmsgParser.ParseRecord("3,1234,2356501969,-,caller=T12;Aborting journal on device loop0-8.\n SUBSYSTEM=block\n DEVICE=b7:0\n");
        Assert.NotNull(r);
        Assert.Equal(3, r.Level);
        Assert.Equal(0, r.Facility);
        Assert.Equal(1234UL, r.Sequence);
        Assert.Equal(2356.501969, r.TimestampSeconds, 6);
        Assert.Equal("Aborting journal on device loop0-8.", r.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("no prefix here")]
    [InlineData("3,x,1,-;msg")]
    [InlineData(";msg")]
    [InlineData("3,1;msg")]
    public void Malformed_kmsg_records_are_null(string text) => Assert.Null(KmsgParser.ParseRecord(text));

    [Fact]
    public void Kmsg_hex_escapes_are_decoded() =>
        Assert.Equal("a\\b\nc", KmsgParser.ParseRecord("6,1,1,-;a\\x5cb\\x0ac")!.Message);

    [Fact]
    public void Capture_skips_dictionary_lines_and_garbage()
    {
        var records = KmsgParser.ParseCapture("6,1,10,-;one\n SUBSYSTEM=block\ngarbage\n6,2,20,-;two\n");
        Assert.Equal(["one", "two"], records.Select(r => r.Message));
    }

    // Wording across kernel eras (brief §2.1: observed on 6.18, and cited sources for older kernels).
    [Theory]
    [InlineData("EXT4-fs error (device loop0): trigger_test_error:129: comm bash: test", KernelEventKind.FilesystemError, "loop0")]
    [InlineData("EXT4-fs error (device loop2): ext4_journal_check_start:87: comm ls: Detected aborted journal", KernelEventKind.JournalAborted, "loop2")]
    [InlineData("EXT3-fs error (device sda1): ext3_journal_start_sb: Detected aborted journal", KernelEventKind.JournalAborted, "sda1")]
    [InlineData("EXT4-fs error (device dm-0) in ext4_reserve_inode_write:4757: Journal has aborted", KernelEventKind.JournalAborted, "dm-0")]
    [InlineData("EXT4-fs (loop0): Remounting filesystem read-only", KernelEventKind.RemountedReadOnly, "loop0")]
    [InlineData("EXT4-fs (loop0): shut down requested (2)", KernelEventKind.FilesystemShutdown, "loop0")]
    [InlineData("Aborting journal on device loop2-8.", KernelEventKind.JournalAborted, "loop2")]
    [InlineData("Aborting journal on device dm-3-8.", KernelEventKind.JournalAborted, "dm-3")]
    [InlineData("JBD2: I/O error when updating journal superblock for loop2-8.", KernelEventKind.FilesystemIoError, "loop2")]
    [InlineData("JBD2: Detected IO errors while flushing file data on sdb1-8", KernelEventKind.FilesystemIoError, "sdb1")]
    [InlineData("EXT4-fs warning (device loop2): ext4_end_bio:368: I/O error 10 writing to inode 13 starting block 15617)", KernelEventKind.FilesystemIoError, "loop2")]
    [InlineData("EXT4-fs (loop2): I/O error while writing superblock", KernelEventKind.FilesystemIoError, "loop2")]
    [InlineData("EXT4-fs (loop0): warning: mounting fs with errors, running e2fsck is recommended", KernelEventKind.FilesystemIoError, "loop0")]
    [InlineData("EXT4-fs (loop0): mounted filesystem 5c3e-11 r/w with ordered data mode. Quota mode: none.", KernelEventKind.FilesystemMounted, "loop0")]
    [InlineData("EXT3-fs (sda1): mounted filesystem with ordered data mode", KernelEventKind.FilesystemMounted, "sda1")]
    [InlineData("XFS (loop3): Mounting V5 Filesystem 0c6d-22", KernelEventKind.FilesystemMounted, "loop3")]
    [InlineData("XFS (loop3): Log I/O Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0 (fs/xfs/xfs_fsops.c:475).  Shutting down filesystem.", KernelEventKind.FilesystemShutdown, "loop3")]
    [InlineData("XFS (sdb1): Corruption of in-memory data detected.  Shutting down filesystem", KernelEventKind.FilesystemShutdown, "sdb1")]
    [InlineData("XFS (dm-2): Filesystem has been shut down due to log error (0x2).", KernelEventKind.FilesystemShutdown, "dm-2")]
    [InlineData("XFS (sda1): xfs_do_force_shutdown(0x2) called from line 1031 of file fs/xfs/xfs_log.c.  Return address = 0xffffffff", KernelEventKind.FilesystemShutdown, "sda1")]
    [InlineData("XFS (loop3): Please unmount the filesystem and rectify the problem(s)", KernelEventKind.FilesystemShutdown, "loop3")]
    [InlineData("XFS (sdc): Please umount the filesystem and rectify the problem(s)", KernelEventKind.FilesystemShutdown, "sdc")]
    [InlineData("Filesystem \"sdb1\": Corruption of in-memory data detected.  Shutting down filesystem: sdb1", KernelEventKind.FilesystemShutdown, "sdb1")]
    [InlineData("XFS (sdb): metadata I/O error in \"xfs_buf_ioend+0x1\" at daddr 0x2 len 1 error 5", KernelEventKind.FilesystemIoError, "sdb")]
    [InlineData("BTRFS info (device loop2 state E): forced readonly", KernelEventKind.ForcedReadOnly, "loop2")]
    [InlineData("BTRFS error (device loop2 state EA): Transaction aborted (error -5)", KernelEventKind.ForcedReadOnly, "loop2")]
    [InlineData("BTRFS: error (device loop2 state EA) in cleanup_transaction:2038: errno=-5 IO failure", KernelEventKind.FilesystemIoError, "loop2")]
    [InlineData("BTRFS error (device sdb): bdev /dev/sdb errs: wr 1, rd 0, flush 0, corrupt 0, gen 0", KernelEventKind.FilesystemIoError, "sdb")]
    [InlineData("BTRFS info (device loop2): first mount of filesystem 8e1f", KernelEventKind.FilesystemMounted, "loop2")]
    [InlineData("loop1: detected capacity change from 0 to 65536", KernelEventKind.DeviceAttached, "loop1")]
    [InlineData("end_request: I/O error, dev sda, sector 123", KernelEventKind.BlockIoError, "sda")]
    [InlineData("blk_update_request: I/O error, dev sdb, sector 8 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0", KernelEventKind.BlockIoError, "sdb")]
    [InlineData("print_req_error: I/O error, dev sdl, sector 77", KernelEventKind.BlockIoError, "sdl")]
    [InlineData("I/O error, dev loop2, sector 28674 op 0x1:(WRITE) flags 0x4000 phys_seg 20 prio class 2", KernelEventKind.BlockIoError, "loop2")]
    [InlineData("critical space allocation error, dev loop2, sector 106498 op 0x1:(WRITE) flags 0x4800 phys_seg 20 prio class 2", KernelEventKind.BlockIoError, "loop2")]
    [InlineData("critical target error, dev sdc, sector 10", KernelEventKind.BlockIoError, "sdc")]
    [InlineData("Buffer I/O error on device loop0, logical block 10244", KernelEventKind.BlockIoError, "loop0")]
    [InlineData("Buffer I/O error on dev sda1, logical block 114690, lost async page write", KernelEventKind.BlockIoError, "sda1")]
    [InlineData("sd 2:0:0:0: [sdb] tag#12 FAILED Result: hostbyte=DID_TIME_OUT driverbyte=DRIVER_OK cmd_age=180s", KernelEventKind.ScsiError, "sdb")]
    [InlineData("sd 2:0:0:0: [sdb] Sense Key : Hardware Error [current]", KernelEventKind.ScsiError, "sdb")]
    [InlineData("mptscsih: ioc0: attempting task abort! (sc=ffff8800)", KernelEventKind.ScsiError, null)]
    [InlineData("INFO: task jbd2/sda1-8:312 blocked for more than 120 seconds.", KernelEventKind.HungTask, null)]
    public void Kernel_wording_is_classified_and_tied_to_the_device(string message, KernelEventKind kind, string? device)
    {
        var e = KernelLogMatcher.MatchOne(new KmsgRecord(3, 0, 1, 1, message));
        Assert.NotNull(e);
        Assert.Equal(kind, e.Kind);
        Assert.Equal(device, e.Device);
    }

    [Theory]
    [InlineData("sd 2:0:0:0: timing out command, waited 180s", "2:0:0:0")]
    [InlineData("sd 3:0:1:0: Device offlined - not ready after error recovery", "3:0:1:0")]
    [InlineData("sd 3:0:1:0: rejecting I/O to offline device", "3:0:1:0")]
    public void Scsi_lines_without_a_disk_name_carry_the_address(string message, string hctl)
    {
        var e = KernelLogMatcher.MatchOne(new KmsgRecord(3, 0, 1, 1, message))!;
        Assert.Equal(KernelEventKind.ScsiError, e.Kind);
        Assert.Equal(hctl, e.ScsiAddress);
    }

    [Fact]
    public void Multipath_failing_path_carries_major_minor() =>
        Assert.Equal("8:32", KernelLogMatcher.MatchOne(new KmsgRecord(3, 0, 1, 1, "device-mapper: multipath: 253:3: Failing path 8:32."))!.DeviceNumber);

    [Theory]
    [InlineData("EXT4-fs (loop0): re-mounted 5c3e r/w. Quota mode: none.")]
    [InlineData("loop0: detected capacity change from 131072 to 0")]
    [InlineData("XFS (loop3): Ending clean mount")]
    [InlineData("usb 1-1: new high-speed USB device")]
    public void Ordinary_lines_do_not_match(string message) =>
        Assert.Null(KernelLogMatcher.MatchOne(new KmsgRecord(6, 0, 1, 1, message)));

    [Fact]
    public void Bare_two_six_era_remount_line_takes_the_device_of_the_error_before_it()
    {
        var events = KernelLogMatcher.Match(
        [
            new KmsgRecord(2, 0, 1, 1, "EXT3-fs error (device sdb1): ext3_journal_start_sb: Detected aborted journal"),
            new KmsgRecord(2, 0, 2, 2, "Remounting filesystem read-only"),
        ]);
        Assert.Equal(KernelEventKind.RemountedReadOnly, events[1].Kind);
        Assert.Equal("sdb1", events[1].Device);
        Assert.Equal(Severity.Error, events[1].Severity);
    }
}
