// SPDX-License-Identifier: MIT
using System.Text.RegularExpressions;
using VRescue.Formats.Common;

namespace VRescue.Guard.Kernel;

/// <summary>What a kernel log line says happened.</summary>
public enum KernelEventKind
{
    /// <summary>A loop device (or removable disk) got a backing store: earlier lines about that name belong to its previous use.</summary>
    DeviceAttached,

    /// <summary>A filesystem was mounted on the device: earlier lines about that device belong to an older mount.</summary>
    FilesystemMounted,

    /// <summary>ext2/3/4 detected an error (ext4_handle_error); with errors=continue the filesystem stays writable.</summary>
    FilesystemError,

    /// <summary>The ext3/ext4 journal (JBD/JBD2) was aborted: no more metadata writes.</summary>
    JournalAborted,

    /// <summary>"Remounting filesystem read-only" (errors=remount-ro).</summary>
    RemountedReadOnly,

    /// <summary>The filesystem shut itself down (XFS forced shutdown, ext4 FS_IOC_SHUTDOWN).</summary>
    FilesystemShutdown,

    /// <summary>btrfs "forced readonly" or an aborted btrfs transaction.</summary>
    ForcedReadOnly,

    /// <summary>An I/O error reported by the filesystem (ext4 write-back, XFS metadata I/O, btrfs error counters).</summary>
    FilesystemIoError,

    /// <summary>Block layer: "I/O error, dev sda, sector N" in every era's wording, or "Buffer I/O error".</summary>
    BlockIoError,

    /// <summary>SCSI midlayer or HBA driver: failed command, timeout, abort/reset, device offlined.</summary>
    ScsiError,

    /// <summary>dm-multipath failed a path.</summary>
    MultipathPathFailed,

    /// <summary>"task ... blocked for more than N seconds": I/O hangs instead of failing.</summary>
    HungTask,
}

/// <summary>
/// A kernel log record that matched a rule. <see cref="Device"/> is a kernel block device name (sda1, dm-3,
/// loop0) when the line names one; <see cref="ScsiAddress"/> is H:C:T:L and <see cref="DeviceNumber"/> MAJ:MIN
/// when the line identifies the device that way instead.
/// </summary>
public sealed record KernelEvent(
    KernelEventKind Kind,
    Severity Severity,
    string? Device,
    KmsgRecord Record,
    string? ScsiAddress = null,
    string? DeviceNumber = null,
    string? Driver = null)
{
    /// <summary>True for the lines that start a new life of a device name (attach, mount).</summary>
    public bool IsMarker => Kind is KernelEventKind.DeviceAttached or KernelEventKind.FilesystemMounted;

    /// <summary>
    /// Whether a filesystem-level line can be about a mount of <paramref name="fsType"/>: an ext4 error on loop1 says
    /// nothing about a squashfs later attached to loop1 (squashfs logs no mount line to cut at).
    /// </summary>
    public bool AppliesTo(string fsType) => Driver is null || fsType.StartsWith(Driver, StringComparison.Ordinal);

    /// <summary>True for events raised by a filesystem driver about its own device (not the disk underneath).</summary>
    public bool IsFilesystemLevel => Kind is not (KernelEventKind.BlockIoError or KernelEventKind.ScsiError
        or KernelEventKind.MultipathPathFailed or KernelEventKind.HungTask);
}

/// <summary>
/// Matches kernel log wording across eras. The sources of each wording are cited per rule; the research brief
/// (guest-readonly.md §2.1) has the observed 6.18 lines. First matching rule wins.
/// </summary>
public static class KernelLogMatcher
{
    private sealed record Rule(KernelEventKind Kind, Severity Severity, Regex Pattern)
    {
        // The fstype prefix the wording belongs to, from the line's own prefix.
        public string? Driver => Pattern.ToString() switch
        {
            var p when p.StartsWith("^EXT", StringComparison.Ordinal) || p.StartsWith("^JBD", StringComparison.Ordinal)
                || p.StartsWith("^Aborting journal", StringComparison.Ordinal) || p.StartsWith("^Remounting", StringComparison.Ordinal) => "ext",
            var p when p.StartsWith("^XFS", StringComparison.Ordinal) || p.StartsWith("^Filesystem", StringComparison.Ordinal) => "xfs",
            var p when p.StartsWith("^BTRFS", StringComparison.Ordinal) => "btrfs",
            _ => null,
        };
    }

    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.Compiled;

    // A device in parentheses: "(loop0)", "(device sda1)", btrfs "(device loop2 state EA)".
    private const string Dev = @"(?<dev>[^\s)]+)";

    private static readonly Rule[] s_rules =
    [
        // drivers/block/loop.c -> block/genhd.c set_capacity_and_notify: "loop1: detected capacity change from 0 to 65536"
        // when a loop device is configured (5.10+); "from 0" means it just got a backing file.
        new(KernelEventKind.DeviceAttached, Severity.Info, new(@"^(?<dev>[\w-]+): detected capacity change from 0 to [1-9]", Options)),
        // fs/ext4/super.c ext4_fill_super: "mounted filesystem <uuid> r/w with ordered data mode" (older: without uuid).
        new(KernelEventKind.FilesystemMounted, Severity.Info, new($@"^EXT[234]-fs \({Dev}\): mounted filesystem", Options)),
        // fs/xfs/xfs_super.c / xfs_log.c: "Mounting V5 Filesystem <uuid>".
        new(KernelEventKind.FilesystemMounted, Severity.Info, new($@"^XFS \({Dev}\): Mounting V\d+ Filesystem", Options)),
        // fs/btrfs/disk-io.c open_ctree: "first mount of filesystem <fsid>" (6.x).
        new(KernelEventKind.FilesystemMounted, Severity.Info, new($@"^BTRFS info \(device {Dev}\): first mount of filesystem", Options)),

        // ext4_handle_error -> "EXT4-fs error (device X): func:line: comm C: msg"; ext3: "EXT3-fs error (device X): func: msg";
        // "... in func:line: Journal has aborted" (__ext4_std_error). Aborted-journal wording is promoted below.
        new(KernelEventKind.JournalAborted, Severity.Error, new($@"^EXT[234]-fs error \(device {Dev}\).*(?:Detected aborted journal|Journal has aborted)", Options)),
        new(KernelEventKind.FilesystemError, Severity.Warning, new($@"^EXT[234]-fs error \(device {Dev}\)", Options)),
        // ext4_handle_error / 2.6-era ext3_handle_error (the bare line is handled by the caller's carry-over).
        new(KernelEventKind.RemountedReadOnly, Severity.Error, new($@"^EXT[234]-fs \({Dev}\): Remounting filesystem read-only", Options)),
        new(KernelEventKind.RemountedReadOnly, Severity.Error, new(@"^Remounting filesystem read-only", Options)),
        // ext4_force_shutdown (fs/ext4/ioctl.c): "shut down requested (%d)".
        new(KernelEventKind.FilesystemShutdown, Severity.Error, new($@"^EXT4-fs \({Dev}\): shut down requested", Options)),
        // fs/jbd2/journal.c jbd2_journal_abort -> __journal_abort_soft: "Aborting journal on device %s." (name is dev-inode).
        new(KernelEventKind.JournalAborted, Severity.Error, new(@"^Aborting journal on device (?<dev>\S+?)(?:-\d+)?\.?$", Options)),
        // jbd2_write_superblock: "JBD2: I/O error when updating journal superblock for %s."; journal_finish_inode_data_buffers:
        // "JBD2: Detected IO errors while flushing file data on %s"; old JBD: "JBD: ... on/for %s".
        new(KernelEventKind.FilesystemIoError, Severity.Warning, new(@"^JBD2?: .*\b(?:for|on) (?<dev>\S+?)-\d+\.?$", Options)),
        // ext4 warnings and messages about I/O: "EXT4-fs warning (device X): ext4_end_bio:368: I/O error 10 writing ...",
        // "EXT4-fs (X): I/O error while writing superblock", "... potential data loss!", "mounting fs with errors".
        new(KernelEventKind.FilesystemIoError, Severity.Warning, new($@"^EXT[234]-fs (?:warning )?\((?:device )?{Dev}\): .*(?:I/O error|data loss|error -\d+|with errors|Filesystem error recorded)", Options)),

        // fs/xfs/xfs_fsops.c xfs_do_force_shutdown: "%s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem." and
        // 2.6/3.x: "Corruption of in-memory data detected.  Shutting down filesystem", "All device paths lost. Shutting
        // down filesystem", xfs_log.c: "Filesystem has been shut down due to log error".
        new(KernelEventKind.FilesystemShutdown, Severity.Error, new($@"^XFS \({Dev}\): .*(?:[Ss]hutting down filesystem|shut down due to log error|xfs_do_force_shutdown|Please u?n?mount the filesystem)", Options)),
        // 2.6.2x XFS: 'Filesystem "sda1": ... Shutting down filesystem'.
        new(KernelEventKind.FilesystemShutdown, Severity.Error, new(@"^Filesystem ""(?<dev>[^""]+)"": .*[Ss]hutting down filesystem", Options)),
        // xfs_buf.c / xfs_trans_buf.c: "metadata I/O error in ...", "writeback error on sector", "log I/O error".
        new(KernelEventKind.FilesystemIoError, Severity.Warning, new($@"^XFS \({Dev}\): .*(?:I/O error|I/O Error|writeback error)", Options)),

        // fs/btrfs/messages.c btrfs_handle_fs_error -> "forced readonly"; "Transaction aborted (error -5)".
        new(KernelEventKind.ForcedReadOnly, Severity.Error, new($@"^BTRFS(?: \w+)? \(device {Dev}(?: state \w+)?\): (?:forced readonly|Transaction aborted)", Options)),
        // "BTRFS: error (device X state EA) in func:line: errno=-5 IO failure", "bdev /dev/X errs: wr 1, rd 0, ...".
        new(KernelEventKind.FilesystemIoError, Severity.Warning, new($@"^BTRFS(?: \w+)?:? (?:error )?\(device {Dev}(?: state \w+)?\):? (?:in |bdev |.*IO failure)", Options)),

        // block/blk-core.c blk_print_req_error and its ancestors: end_request (<=3.x), blk_update_request (3.17-5.x),
        // print_req_error (4.17-5.x), no prefix (5.18+). The status word comes from blk_errors[].
        new(KernelEventKind.BlockIoError, Severity.Warning, new(@"^(?:(?:end_request|blk_update_request|print_req_error|blk_print_req_error): )?(?:I/O error|critical \w+(?: \w+)* error|recoverable transport error|timeout|protection error|operation not supported error), dev (?<dev>[^,\s]+), sector", Options)),
        // fs/buffer.c buffer_io_error / end_buffer_async_write: "Buffer I/O error on dev(ice) sda1, logical block N".
        new(KernelEventKind.BlockIoError, Severity.Warning, new(@"^Buffer I/O error on dev(?:ice)? (?<dev>[^,\s]+), logical block", Options)),

        // drivers/scsi: "sd 2:0:0:0: [sdb] tag#12 FAILED Result: ...", "sd 2:0:0:0: timing out command, waited 180s",
        // "... Device offlined - not ready after error recovery", "rejecting I/O to offline device", sense data.
        new(KernelEventKind.ScsiError, Severity.Warning, new(@"^(?:sd|scsi) (?<hctl>\d+:\d+:\d+:\d+): (?:\[(?<dev>\w+)\] )?(?:tag#\d+ )?.*(?:FAILED Result|timing out command|Device offlined|rejecting I/O to offline device|Sense Key|abort|reset)", Options)),
        // VMware LSI Logic vHBA, drivers/message/fusion/mptscsih.c: "mptscsih: ioc0: attempting task abort! (sc=...)".
        new(KernelEventKind.ScsiError, Severity.Warning, new(@"^mptscsih: ioc\d+: (?:attempting task abort|attempting target reset|attempting bus reset|task abort|target reset)", Options)),
        // drivers/md/dm-mpath.c fail_path: "device-mapper: multipath: 253:3: Failing path 8:32." (older: no map number).
        new(KernelEventKind.MultipathPathFailed, Severity.Warning, new(@"^device-mapper: multipath:(?: \d+:\d+:)? Failing path (?<devno>\d+:\d+)", Options)),
        // kernel/hung_task.c: "INFO: task %s:%d blocked for more than %ld seconds."
        new(KernelEventKind.HungTask, Severity.Warning, new(@"^INFO: task .+:\d+ blocked for more than \d+ seconds", Options)),
    ];

    /// <summary>Matches every record; records that match no rule are not returned.</summary>
    public static IReadOnlyList<KernelEvent> Match(IEnumerable<KmsgRecord> records)
    {
        var events = new List<KernelEvent>();
        string? lastExtErrorDevice = null;
        foreach (var record in records)
        {
            if (MatchOne(record) is not { } e)
            {
                continue;
            }

            // The 2.6-era bare "Remounting filesystem read-only" follows the ext3/ext4 error that caused it.
            if (e.Kind == KernelEventKind.RemountedReadOnly && e.Device is null)
            {
                e = e with { Device = lastExtErrorDevice };
            }

            if (e.Kind is KernelEventKind.FilesystemError or KernelEventKind.JournalAborted && e.Record.Message.StartsWith("EXT", StringComparison.Ordinal))
            {
                lastExtErrorDevice = e.Device;
            }

            events.Add(e);
        }

        return events;
    }

    /// <summary>The first rule that matches one record, or null.</summary>
    public static KernelEvent? MatchOne(KmsgRecord record)
    {
        foreach (var rule in s_rules)
        {
            var m = rule.Pattern.Match(record.Message);
            if (!m.Success)
            {
                continue;
            }

            return new KernelEvent(rule.Kind, rule.Severity, Group(m, "dev"), record, Group(m, "hctl"), Group(m, "devno"), rule.Driver);
        }

        return null;
    }

    private static string? Group(Match m, string name) => m.Groups[name] is { Success: true } g ? g.Value : null;
}
