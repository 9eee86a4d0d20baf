// SPDX-License-Identifier: MIT
using System.Globalization;

namespace VRescue.Guard.Sysfs;

/// <summary>
/// Block device names and relations from sysfs (Documentation/ABI/stable/sysfs-block): MAJ:MIN to kernel name via
/// /sys/dev/block/MAJ:MIN, a partition's disk (the parent directory of a partition has no "partition" file),
/// device-mapper slaves, SCSI H:C:T:L and the SCSI command timeout. Rooted at a configurable directory so tests can
/// point it at a captured tree; missing files give nulls, never exceptions.
/// </summary>
public sealed class SysfsBlockDevices(string sysfsRoot = "/sys")
{
    // dm over dm over partitions is at most a few levels; the bound stops a cycle in a hostile tree.
    private const int MaxStackDepth = 8;

    /// <summary>The sysfs mount point used.</summary>
    public string Root { get; } = sysfsRoot;

    /// <summary>Kernel name (sda1, dm-3, loop0) for MAJ:MIN, or null when sysfs does not know it.</summary>
    public string? NameOf(int major, int minor)
    {
        var link = Path.Combine(Root, "dev", "block", $"{major}:{minor}");
        var target = ResolveLink(link);
        return target is null ? null : Path.GetFileName(target);
    }

    /// <summary>Kernel name for a "MAJ:MIN" string.</summary>
    public string? NameOf(string deviceNumber)
    {
        var parts = deviceNumber.Split(':');
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            ? NameOf(major, minor)
            : null;
    }

    /// <summary>
    /// Every kernel name whose failure reaches <paramref name="name"/>: itself, its disk when it is a partition,
    /// and recursively the slaves of a device-mapper or md device (and their disks).
    /// </summary>
    public IReadOnlyList<string> Underlying(string name)
    {
        var result = new List<string>();
        var queue = new Queue<(string Name, int Depth)>([(name, 0)]);
        while (queue.Count > 0)
        {
            var (current, depth) = queue.Dequeue();
            if (result.Contains(current) || depth > MaxStackDepth)
            {
                continue;
            }

            result.Add(current);
            if (DiskOf(current) is { } disk)
            {
                queue.Enqueue((disk, depth + 1));
            }

            var slaves = Path.Combine(Root, "class", "block", current, "slaves");
            if (Directory.Exists(slaves))
            {
                foreach (var s in Directory.EnumerateFileSystemEntries(slaves).Order(StringComparer.Ordinal))
                {
                    queue.Enqueue((Path.GetFileName(s), depth + 1));
                }
            }
        }

        return result;
    }

    /// <summary>The whole disk of a partition (sda for sda1), or null when <paramref name="name"/> is not a partition.</summary>
    public string? DiskOf(string name)
    {
        var dir = ResolveLink(Path.Combine(Root, "class", "block", name));
        if (dir is null || !File.Exists(Path.Combine(dir, "partition")))
        {
            return null;
        }

        return Path.GetFileName(Path.GetDirectoryName(dir));
    }

    /// <summary>The disk behind SCSI address H:C:T:L (/sys/class/scsi_device/H:C:T:L/device/block/NAME).</summary>
    public string? NameOfScsiAddress(string hctl)
    {
        var dir = Path.Combine(Root, "class", "scsi_device", hctl, "device", "block");
        return Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).FirstOrDefault() : null;
    }

    /// <summary>/sys/block/DISK/device/timeout in seconds (SCSI disks only; virtio-blk and xen-blkfront have none).</summary>
    public int? ScsiTimeoutSeconds(string disk) => ReadInt(Path.Combine(Root, "block", disk, "device", "timeout"));

    /// <summary>Whole disks (entries of /sys/block) in name order.</summary>
    public IReadOnlyList<string> Disks()
    {
        var dir = Path.Combine(Root, "block");
        return Directory.Exists(dir) ? Directory.EnumerateFileSystemEntries(dir).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToArray() : [];
    }

    /// <summary>A sysfs attribute as trimmed text, or null when absent or unreadable.</summary>
    public static string? ReadText(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A sysfs attribute as an integer, or null.</summary>
    public static int? ReadInt(string path) =>
        int.TryParse(ReadText(path), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;

    private static string? ResolveLink(string path)
    {
        try
        {
            var info = new DirectoryInfo(path);
            if (info.LinkTarget is null)
            {
                return info.Exists ? info.FullName : null;
            }

            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            return target is { Exists: true } ? target.FullName : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
