// SPDX-License-Identifier: MIT
using System.Globalization;
using VRescue.Formats.Common;
using VRescue.Formats.Ext;
using VRescue.Guard.Advice;
using VRescue.Guard.Filesystems;
using VRescue.Guard.Kernel;
using VRescue.Guard.Mounts;
using VRescue.Guard.Probe;
using VRescue.Guard.Sysfs;

namespace VRescue.Guard.Check;

/// <summary>
/// One check of every watched mount: mount table flags, the filesystem's own error record, kernel log lines tied to
/// the device, and optionally a write probe. Combines sources because each alone misses cases (brief §1.7, §7).
/// </summary>
public sealed class GuardChecker(GuardRules rules, GuardInputs inputs)
{
    private const string SelfMountInfo = "/proc/self/mountinfo";
    private const string InitMountInfo = "/proc/1/mountinfo";

    private static readonly HashSet<string> s_extTypes = new(StringComparer.Ordinal) { "ext2", "ext3", "ext4" };

    private readonly SysfsBlockDevices _sysfs = new(inputs.SysfsRoot);

    /// <summary>Runs the check. Throws only when the mount table itself cannot be read (the caller reports UNKNOWN).</summary>
    public GuardReport Run()
    {
        var (mountInfoPath, mountInfoText) = ReadMountInfo();
        var table = MountInfoParser.Parse(mountInfoText);
        var globalProblems = table.Problems
            .Select(p => new Finding("guard.mountinfo.unparsed", Severity.Warning, $"{mountInfoPath} line {p.LineNumber} not understood: {p.Reason}", Stored: p.Line))
            .ToList();

        var fstab = File.Exists(inputs.FstabPath) ? FstabParser.Parse(File.ReadAllText(inputs.FstabPath)) : [];
        var events = ReadKernelEvents(globalProblems);

        // When reading init's table from another mount namespace, reach its mount points through /proc/1/root.
        // Unknown (the links are unreadable without ptrace access to init) counts as the same namespace.
        var probePrefix = mountInfoPath == InitMountInfo && OtherMountNamespace() ? "/proc/1/root" : "";

        var reports = new List<MountReport>();
        var attached = new HashSet<KernelEvent>(ReferenceEqualityComparer.Instance);
        var ignored = 0;
        foreach (var entry in table.Entries)
        {
            if (!IsWatched(entry))
            {
                ignored++;
                continue;
            }

            reports.Add(CheckMount(entry, fstab, events, attached, probePrefix));
        }

        var unattached = events.Where(e => !attached.Contains(e) && !e.IsMarker).ToList();
        if (unattached.Where(e => e.Kind == KernelEventKind.HungTask).ToList() is { Count: > 0 } hung)
        {
            globalProblems.Add(new Finding("guard.kernel.hung-task", rules.HungTaskSeverity,
                $"{hung.Count} kernel report(s) of tasks blocked on I/O; last: {hung[^1].Record.Message}"));
        }

        var worst = reports.SelectMany(r => r.Problems).Concat(globalProblems).Select(p => (Severity?)p.Severity).Max();
        return new GuardReport
        {
            Status = worst switch { Severity.Error => GuardStatus.Critical, Severity.Warning => GuardStatus.Warning, _ => GuardStatus.Ok },
            MountInfoSource = mountInfoPath,
            Mounts = reports,
            IgnoredMountCount = ignored,
            Problems = globalProblems,
            OtherKernelLines = unattached.TakeLast(rules.KernelLinesPerMount).Select(e => e.Record.ToString()).ToArray(),
        };
    }

    private bool IsWatched(MountInfoEntry e) =>
        rules.OnlyMountPoints.Count > 0
            ? rules.OnlyMountPoints.Contains(e.MountPoint)
            : !rules.IgnoredFsTypes.Contains(e.FsType) && !rules.IsIgnoredMountPoint(e.MountPoint);

    private MountReport CheckMount(MountInfoEntry entry, IReadOnlyList<FstabEntry> fstab, IReadOnlyList<KernelEvent> events,
        HashSet<KernelEvent> attached, string probePrefix)
    {
        var problems = new List<Finding>();
        var name = DeviceNameOf(entry);
        var fstabEntry = fstab.LastOrDefault(f => f.MountPoint == entry.MountPoint);
        var where = $"{entry.MountPoint} ({name ?? entry.Source})";
        var state = MountState.Writable;
        void Raise(MountState s) => state = (MountState)Math.Max((int)state, (int)s);

        var intendedType = rules.ReadOnlyFsTypes.Contains(entry.FsType);
        var intendedRo = intendedType || entry.IsMountReadOnly || fstabEntry?.IsReadOnly == true;

        // Mount table: superblock flags (fs/proc_namespace.c show_sb_opts + the filesystem's show_options).
        if (entry.HasSuperOption("shutdown"))
        {
            Raise(MountState.Shutdown);
            problems.Add(new("guard.mount.shutdown", Severity.Error, $"{where}: filesystem is shut down (superblock option 'shutdown'); reads and writes fail with EIO"));
        }

        if (entry.HasSuperOption("emergency_ro"))
        {
            Raise(MountState.EmergencyReadOnly);
            problems.Add(new("guard.mount.emergency-ro", Severity.Error, $"{where}: ext4 stopped writes after an error (superblock option 'emergency_ro'); the mount table still says rw"));
        }

        if (intendedRo)
        {
            Raise(MountState.IntendedReadOnly);
        }
        else if (entry.IsSuperReadOnly)
        {
            Raise(MountState.ReadOnly);
            problems.Add(new("guard.mount.super-ro", Severity.Error, $"{where}: superblock is read-only under a read-write mount: the kernel remounted it after an error"));
        }

        if (!intendedType && entry.IsMountReadOnly && fstabEntry is { IsReadOnly: false } && rules.ReadOnlyAgainstFstabSeverity > Severity.Info)
        {
            Raise(MountState.ReadOnlyAgainstFstab);
            problems.Add(new("guard.mount.ro-against-fstab", rules.ReadOnlyAgainstFstabSeverity, $"{where}: mounted read-only but {inputs.FstabPath} lists it without 'ro'"));
        }

        // The filesystem's own records.
        Ext4ErrorRecord? ext4Sysfs = null, ext4Super = null;
        string? superError = null, errorsBehaviour = null;
        XfsErrorConfig? xfs = null;
        if (s_extTypes.Contains(entry.FsType))
        {
            ext4Sysfs = name is null ? null : Ext4ErrorRecord.FromSysfs(inputs.SysfsRoot, name);
            (ext4Super, superError) = ReadSuperblock(entry, name);
            errorsBehaviour = entry.SuperOptionValue("errors") ?? ProcExt4Option(name, "errors") ?? BehaviourName(ext4Super?.ErrorBehaviour);
            if ((ext4Sysfs ?? ext4Super) is { ErrorCount: > 0 } rec)
            {
                Raise(MountState.Errors);
                problems.Add(new("guard.ext4.errors-recorded", Severity.Warning,
                    $"{where}: {rec.ErrorCount} error(s) recorded ({rec.Source}); first {Describe(rec.FirstError)}; last {Describe(rec.LastError)}; errors={errorsBehaviour ?? "?"}"));
            }
            else if (ext4Super?.State is { } st && st.HasFlag(Ext4State.ErrorsDetected))
            {
                Raise(MountState.Errors);
                problems.Add(new("guard.ext4.state-errors", Severity.Warning, $"{where}: superblock state 'with errors': e2fsck has not run since an error"));
            }

            if (superError is not null && superError.Contains("Input/output error", StringComparison.Ordinal))
            {
                Raise(MountState.Errors);
                problems.Add(new("guard.ext4.superblock-io-error", Severity.Warning, $"{where}: reading the superblock failed: {superError}"));
            }
        }
        else if (entry.FsType == "xfs" && name is not null)
        {
            xfs = XfsErrorConfig.FromSysfs(inputs.SysfsRoot, name);
        }

        // Kernel log, since this filesystem's most recent mount.
        var mine = EventsFor(entry, name, events);
        foreach (var e in mine)
        {
            attached.Add(e);
        }

        foreach (var group in mine.GroupBy(e => e.Kind))
        {
            var (code, s, text) = group.Key switch
            {
                KernelEventKind.FilesystemShutdown => ("guard.kernel.shutdown", MountState.Shutdown, "kernel shut the filesystem down"),
                KernelEventKind.JournalAborted => ("guard.kernel.journal-aborted", MountState.Shutdown, "kernel aborted the journal"),
                KernelEventKind.RemountedReadOnly => ("guard.kernel.remounted-ro", MountState.ReadOnly, "kernel remounted the filesystem read-only"),
                KernelEventKind.ForcedReadOnly => ("guard.kernel.forced-ro", MountState.ReadOnly, "btrfs forced the filesystem read-only"),
                KernelEventKind.FilesystemError => ("guard.kernel.fs-error", MountState.Errors, "filesystem reported errors"),
                KernelEventKind.FilesystemIoError => ("guard.kernel.fs-io-error", MountState.Errors, "filesystem reported I/O errors"),
                KernelEventKind.BlockIoError => ("guard.kernel.block-io-error", MountState.Errors, "the device underneath returned I/O errors"),
                KernelEventKind.ScsiError => ("guard.kernel.scsi-error", MountState.Errors, "the SCSI layer reported failed or timed-out commands"),
                KernelEventKind.MultipathPathFailed => ("guard.kernel.multipath", MountState.Errors, "multipath failed a path"),
                _ => ("guard.kernel.other", MountState.Errors, "kernel reported a problem"),
            };
            Raise(s);
            problems.Add(new(code, group.Max(e => e.Severity), $"{where}: {text} ({group.Count()} line(s); last: {group.Last().Record.Message})"));
        }

        // Optional write probe: the only thing that sees XFS shutdown or ext4 emergency_ro on 6.12-6.14 without a log.
        WriteProbeResult? probe = null;
        if (inputs.WriteProbe && !intendedRo && rules.ProbeFsTypes.Contains(entry.FsType))
        {
            probe = WriteProbe.Run(probePrefix + entry.MountPoint, rules.ProbeDeadline);
            switch (probe.Outcome)
            {
                case WriteProbeOutcome.ReadOnly:
                    Raise(entry.FsType.StartsWith("ext", StringComparison.Ordinal) ? MountState.EmergencyReadOnly : MountState.ReadOnly);
                    problems.Add(new("guard.probe.read-only", Severity.Error, $"{where}: write probe refused: {probe.Message} (EROFS)"));
                    break;
                case WriteProbeOutcome.IoError:
                    Raise(MountState.Shutdown);
                    problems.Add(new("guard.probe.io-error", Severity.Error, $"{where}: write probe failed: {probe.Message} (EIO)"));
                    break;
                case WriteProbeOutcome.TimedOut:
                    Raise(MountState.Hung);
                    problems.Add(new("guard.probe.timeout", Severity.Error, $"{where}: write probe hung: {probe.Message}"));
                    break;
                case WriteProbeOutcome.OtherError:
                    problems.Add(new("guard.probe.other", Severity.Info, $"{where}: write probe: {probe.Message}"));
                    break;
            }
        }

        var report = new MountReport
        {
            MountPoint = entry.MountPoint,
            Source = entry.Source,
            FsType = entry.FsType,
            DeviceNumber = entry.DeviceNumber,
            DeviceName = name,
            MountOptions = entry.MountOptions,
            SuperOptions = entry.SuperOptions,
            State = state,
            Problems = problems,
            ErrorsBehaviour = errorsBehaviour,
            Ext4Sysfs = ext4Sysfs,
            Ext4Superblock = ext4Super,
            SuperblockError = superError,
            Xfs = xfs,
            Probe = probe,
            KernelLines = RecentLines(mine),
            KernelLineCount = mine.Count,
        };
        return report with { Advice = GuardAdvisor.ForMount(report, mine, _sysfs, rules) };
    }

    // The filesystem's own lines are few and say what happened; the disk's can be thousands (rate-limited even so):
    // keep the first disk lines (the first I/O error is the cause; the "Buffer I/O error" lines that follow are
    // echoes) and the most recent ones, all in log order.
    private string[] RecentLines(List<KernelEvent> mine)
    {
        var limit = rules.KernelLinesPerMount;
        var disk = mine.Where(e => !e.IsFilesystemLevel).ToList();
        var first = Math.Min(3, limit / 2);
        var diskKept = disk.Count <= limit ? disk : disk.Take(first).Concat(disk.TakeLast(limit - first));
        return mine.Where(e => e.IsFilesystemLevel).TakeLast(limit)
            .Concat(diskKept)
            .OrderBy(e => e.Record.Sequence)
            .Select(e => e.Record.ToString())
            .ToArray();
    }

    /// <summary>
    /// Events about this mount's device, or a device underneath it, after the last "mounted" or "attached" line for
    /// it, from the driver of this filesystem type: a loop device or disk reused for a new filesystem must not
    /// inherit its predecessor's errors.
    /// </summary>
    private List<KernelEvent> EventsFor(MountInfoEntry entry, string? name, IReadOnlyList<KernelEvent> events)
    {
        var fsNames = new HashSet<string>(StringComparer.Ordinal);
        if (name is not null)
        {
            fsNames.Add(name);
        }

        if (SourceDeviceName(entry.Source) is { } sourceName)
        {
            fsNames.Add(sourceName);
        }

        if (fsNames.Count == 0)
        {
            return [];
        }

        var blockNames = new HashSet<string>(fsNames.SelectMany(n => _sysfs.Underlying(n)), StringComparer.Ordinal);
        var start = 0;
        for (var i = events.Count - 1; i >= 0; i--)
        {
            if (events[i].IsMarker && events[i].Device is { } d && fsNames.Contains(d))
            {
                start = i + 1;
                break;
            }
        }

        var result = new List<KernelEvent>();
        for (var i = start; i < events.Count; i++)
        {
            var e = events[i];
            if (e.IsMarker || e.Kind == KernelEventKind.HungTask || (e.IsFilesystemLevel && !e.AppliesTo(entry.FsType)))
            {
                continue;
            }

            var device = e.Device
                ?? (e.ScsiAddress is { } hctl ? _sysfs.NameOfScsiAddress(hctl) : null)
                ?? (e.DeviceNumber is { } devno ? _sysfs.NameOf(devno) : null);
            if (device is not null && (e.IsFilesystemLevel ? fsNames : blockNames).Contains(device))
            {
                result.Add(e);
            }
        }

        return result;
    }

    private string? DeviceNameOf(MountInfoEntry entry) =>
        (entry.Major != 0 ? _sysfs.NameOf(entry.Major, entry.Minor) : null) ?? SourceDeviceName(entry.Source);

    /// <summary>"/dev/mapper/vg-lv" -> "dm-3" (following the symlink), "/dev/sda1" -> "sda1"; null for non-device sources.</summary>
    private string? SourceDeviceName(string source)
    {
        if (!source.StartsWith("/dev/", StringComparison.Ordinal))
        {
            return null;
        }

        try
        {
            var path = Path.Combine(inputs.DevRoot, source["/dev/".Length..]);
            var target = File.ResolveLinkTarget(path, returnFinalTarget: true);
            return Path.GetFileName(target?.FullName ?? source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Path.GetFileName(source);
        }
    }

    private (Ext4ErrorRecord?, string?) ReadSuperblock(MountInfoEntry entry, string? name)
    {
        if (!inputs.ReadSuperblocks || name is null)
        {
            return (null, null);
        }

        var device = Path.Combine(inputs.DevRoot, name);
        if (!File.Exists(device))
        {
            return (null, $"{device} not found");
        }

        try
        {
            return (Ext4ErrorRecord.ReadSuperblock(device), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, e.Message);
        }
    }

    private string? ProcExt4Option(string? name, string key)
    {
        if (name is null)
        {
            return null;
        }

        var text = SysfsBlockDevices.ReadText(Path.Combine(inputs.ProcRoot, "fs", "ext4", name, "options"));
        var prefix = key + "=";
        return text?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
    }

    private static string? BehaviourName(Ext4ErrorBehaviour? b) => b switch
    {
        Ext4ErrorBehaviour.Continue => "continue",
        Ext4ErrorBehaviour.RemountReadOnly => "remount-ro",
        Ext4ErrorBehaviour.Panic => "panic",
        _ => null,
    };

    /// <summary>"2026-01-02 03:04:05Z in func:line (CODE, inode N, block N)", or "none".</summary>
    public static string Describe(Ext4ErrorPoint? p) => p is null
        ? "none"
        : string.Create(CultureInfo.InvariantCulture, $"{p.Time:yyyy-MM-dd HH:mm:ss}Z in {p.Function}:{p.Line} ({p.CodeName}{(p.Inode != 0 ? $", inode {p.Inode}" : "")}{(p.Block != 0 ? $", block {p.Block}" : "")})");

    private (string, string) ReadMountInfo()
    {
        if (inputs.MountInfoPath is { } explicitPath)
        {
            return (explicitPath, File.ReadAllText(explicitPath));
        }

        try
        {
            return (InitMountInfo, File.ReadAllText(InitMountInfo));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (SelfMountInfo, File.ReadAllText(SelfMountInfo));
        }
    }

    // /proc/PID/ns/mnt reads as "mnt:[inode]"; different strings mean different namespaces (namespaces(7)).
    private static bool OtherMountNamespace() =>
        ReadLink("/proc/1/ns/mnt") is { } init && ReadLink("/proc/self/ns/mnt") is { } self && init != self;

    private static string? ReadLink(string path)
    {
        var buffer = new byte[256];
        var n = ReadLinkNative(path, buffer, buffer.Length);
        return n > 0 ? System.Text.Encoding.UTF8.GetString(buffer, 0, (int)n) : null;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "readlink", SetLastError = true)]
    private static extern nint ReadLinkNative(string path, byte[] buffer, nint size);

    private IReadOnlyList<KernelEvent> ReadKernelEvents(List<Finding> problems)
    {
        if (inputs.KmsgPath is not { } path)
        {
            return [];
        }

        try
        {
            return KernelLogMatcher.Match(KmsgReader.ReadAll(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add(new("guard.kernel.unreadable", Severity.Info, $"kernel log not read: {e.Message}; run as root to see kernel lines"));
            return [];
        }
    }
}
