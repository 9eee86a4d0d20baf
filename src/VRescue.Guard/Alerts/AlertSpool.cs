// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.Guard.Channels;

namespace VRescue.Guard.Alerts;

/// <summary>An alert that one channel has not taken yet.</summary>
public sealed record SpooledDelivery
{
    public required string Channel { get; init; }
    public required GuardAlert Alert { get; init; }
    public int Attempts { get; init; }
    public DateTimeOffset NextAttempt { get; init; }
    public string? LastError { get; init; }

    /// <summary>Spool key: one entry per alert and channel.</summary>
    public string Key => $"{Alert.Id}.{SafeName(Channel)}";

    internal static string SafeName(string s) => new(s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray());
}

/// <summary>What the daemon keeps between cycles and restarts.</summary>
public sealed record GuardStateDocument
{
    public DateTimeOffset SavedAt { get; init; }
    public List<MountMemory> Mounts { get; init; } = [];

    /// <summary>Recently delivered spool keys, so a delivery whose spool file could not be removed is not sent twice.</summary>
    public List<string> Delivered { get; init; } = [];
}

/// <summary>
/// State file and delivery spool, kept on the first of several directories that still takes writes (the
/// filesystem that failed may be the one under /var). Each directory is tried at write time; a directory on a
/// mount the current check found broken is skipped without touching it. When none takes the write, entries stay
/// in memory, and a line goes to /dev/kmsg so the alert at least reaches the console and the kernel log.
/// </summary>
public sealed class GuardStore(IReadOnlyList<string> dirs, Action<string>? kernelLogLine = null)
{
    private const string StateFileName = "state.json";
    private const string SpoolDirName = "spool";
    private const int DeliveredKept = 500;

    private readonly Dictionary<string, (SpooledDelivery Delivery, string? Dir)> _pending = new(StringComparer.Ordinal);

    /// <summary>Where the state file was last written; null when it only lives in memory.</summary>
    public string? StateDir { get; private set; }

    /// <summary>Undelivered entries, oldest alert first.</summary>
    public IReadOnlyList<SpooledDelivery> Pending => _pending.Values.Select(v => v.Delivery).OrderBy(d => d.Alert.Time).ThenBy(d => d.Channel, StringComparer.Ordinal).ToList();

    /// <summary>How many entries are only in memory (lost on restart).</summary>
    public int InMemoryCount => _pending.Values.Count(v => v.Dir is null);

    /// <summary>The newest state file among the directories (a fallback directory may hold a newer one).</summary>
    public GuardStateDocument LoadState()
    {
        GuardStateDocument? best = null;
        foreach (var dir in dirs)
        {
            try
            {
                var doc = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(dir, StateFileName)), GuardJson.Context.GuardStateDocument);
                if (doc is not null && (best is null || doc.SavedAt > best.SavedAt))
                {
                    best = doc;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
            }
        }

        return best ?? new GuardStateDocument();
    }

    /// <summary>Writes the state to the first usable directory; false when none took it.</summary>
    public bool SaveState(GuardStateDocument doc, Func<string, bool> avoid)
    {
        var trimmed = doc with { Delivered = doc.Delivered.TakeLast(DeliveredKept).ToList() };
        var json = JsonSerializer.Serialize(trimmed, GuardJson.Context.GuardStateDocument);
        foreach (var dir in dirs.Where(d => !avoid(d)))
        {
            if (TryWrite(dir, StateFileName, json))
            {
                StateDir = dir;
                return true;
            }
        }

        StateDir = null;
        return false;
    }

    /// <summary>Loads spooled entries from every directory (an entry moved between directories counts once).</summary>
    public void LoadSpool(IReadOnlySet<string> delivered)
    {
        foreach (var dir in dirs)
        {
            var spool = Path.Combine(dir, SpoolDirName);
            if (!Directory.Exists(spool))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(spool, "*.json"))
            {
                try
                {
                    var d = JsonSerializer.Deserialize(File.ReadAllText(file), GuardJson.Context.SpooledDelivery);
                    if (d is not null && !delivered.Contains(d.Key) && !_pending.ContainsKey(d.Key))
                    {
                        _pending[d.Key] = (d, dir);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
                {
                }
            }
        }
    }

    /// <summary>Stores or updates an entry; returns the directory used, or "memory".</summary>
    public string Put(SpooledDelivery d, Func<string, bool> avoid)
    {
        var json = JsonSerializer.Serialize(d, GuardJson.Context.SpooledDelivery);
        var previous = _pending.TryGetValue(d.Key, out var p) ? p.Dir : null;
        var candidates = previous is null ? dirs : dirs.Where(x => x == previous).Concat(dirs.Where(x => x != previous));
        foreach (var dir in candidates.Where(x => !avoid(x)))
        {
            if (TryWrite(Path.Combine(dir, SpoolDirName), d.Key + ".json", json))
            {
                if (previous is not null && previous != dir)
                {
                    TryDelete(Path.Combine(previous, SpoolDirName, d.Key + ".json"));
                }

                _pending[d.Key] = (d, dir);
                return dir;
            }
        }

        if (!_pending.TryGetValue(d.Key, out var old) || old.Dir is not null)
        {
            kernelLogLine?.Invoke($"vrescue-guard: alert not delivered by {d.Channel} and no spool directory writable, kept in memory: {AlertText.Short(d.Alert)}");
        }

        _pending[d.Key] = (d, null);
        return "memory";
    }

    /// <summary>Forgets a delivered entry and removes its file.</summary>
    public void Remove(SpooledDelivery d)
    {
        if (_pending.Remove(d.Key, out var p) && p.Dir is not null)
        {
            TryDelete(Path.Combine(p.Dir, SpoolDirName, d.Key + ".json"));
        }
    }

    // Temporary file + rename in the same directory: a reader never sees half a file.
    private static bool TryWrite(string dir, string name, string text)
    {
        var tmp = Path.Combine(dir, $".{name}.{Environment.ProcessId}.tmp");
        try
        {
            Directory.CreateDirectory(dir);
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                f.Write(System.Text.Encoding.UTF8.GetBytes(text));
                f.Flush(flushToDisk: true);
            }

            File.Move(tmp, Path.Combine(dir, name), overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(tmp);
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
