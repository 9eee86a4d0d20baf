// SPDX-License-Identifier: MIT
using System.Text.Json;
using VRescue.TestSupport;

namespace VRescue.TestSupport;

/// <summary>
/// A sparse image on its own loop device with an isolated LVM configuration: LVM_SYSTEM_DIR points at a temp
/// lvm.conf whose filter accepts only this loop device, activation is off (no device-mapper here), backups and
/// archives are off, and the devices file is not used — so neither the host nor parallel tests see or touch
/// each other's VGs. Dispose detaches the device and deletes the directory.
/// </summary>
public sealed class LoopLvm : IDisposable
{
    private readonly Dictionary<string, string> _env;

    public LoopLvm(long sizeBytes)
        : this([sizeBytes])
    {
    }

    /// <summary>One sparse image and loop device per size (a multi-PV setup), all in one filter.</summary>
    public LoopLvm(params long[] sizesBytes)
        : this(sizesBytes.Select(size => ((string?)null, 0L, size)).ToArray())
    {
    }

    /// <summary>
    /// Attaches an existing image (not deleted on dispose) at <paramref name="offsetBytes"/> for
    /// <paramref name="sizeBytes"/>, e.g. a partition of a disk image; with a null path a new sparse image is made.
    /// </summary>
    public LoopLvm(string? imagePath, long offsetBytes, long sizeBytes)
        : this([(imagePath, offsetBytes, sizeBytes)])
    {
    }

    private LoopLvm((string? ImagePath, long OffsetBytes, long SizeBytes)[] specs)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vrescue-lvm-").FullName;
        var devices = new List<string>();
        var images = new List<string>();
        try
        {
            foreach (var (existing, offset, size) in specs)
            {
                var image = existing ?? Path.Combine(Directory, images.Count == 0 ? "pv.img" : $"pv{images.Count}.img");
                if (existing is null)
                {
                    using var f = new FileStream(image, FileMode.CreateNew);
                    f.SetLength(size);
                }

                devices.Add(existing is null
                    ? Repo.Run("losetup", $"-f --show \"{image}\"").Trim()
                    : Repo.Run("losetup", $"-f --show -o {offset} --sizelimit {size} \"{image}\"").Trim());
                images.Add(image);
            }
        }
        catch
        {
            devices.ForEach(d => Repo.Run("losetup", $"-d {d}", check: false));
            throw;
        }

        Devices = devices;
        ImagePaths = images;
        var accept = string.Join(", ", devices.Select(d => $"\"a|^{d}$|\""));
        File.WriteAllText(Path.Combine(Directory, "lvm.conf"), $$"""
            devices {
                filter = [ {{accept}}, "r|.*|" ]
                scan = [ "/dev" ]
                obtain_device_list_from_udev = 0
                use_devicesfile = 0
            }
            global {
                activation = 0
                use_lvmetad = 0
            }
            backup {
                backup = 0
                archive = 0
            }
            """);
        _env = new Dictionary<string, string>
        {
            ["LVM_SYSTEM_DIR"] = Directory,
            ["LVM_SUPPRESS_FD_WARNINGS"] = "1",
        };
    }

    /// <summary>All loop devices, in constructor order.</summary>
    public IReadOnlyList<string> Devices { get; }

    /// <summary>All backing images, in constructor order.</summary>
    public IReadOnlyList<string> ImagePaths { get; }

    /// <summary>Temp directory holding the image and lvm.conf.</summary>
    public string Directory { get; }

    public string ImagePath => ImagePaths[0];

    /// <summary>/dev/loopN of the first image.</summary>
    public string Device => Devices[0];

    /// <summary>Runs <c>lvm &lt;arguments&gt;</c> with the isolated configuration and returns stdout.</summary>
    public string Lvm(string arguments, bool check = true) =>
        Repo.Run(Repo.Which("lvm") ?? "lvm", arguments, _env, check);

    /// <summary>Runs an lvm report command with --reportformat json and returns the rows of its first report.</summary>
    public List<JsonElement> Report(string command, string key, string fields) =>
        JsonDocument.Parse(Lvm($"{command} --reportformat json --units b --nosuffix -o {fields}"))
            .RootElement.GetProperty("report")[0].GetProperty(key).EnumerateArray().ToList();

    public void Dispose()
    {
        foreach (var device in Devices)
        {
            Repo.Run("losetup", $"-d {device}", check: false);
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless; a leftover loop device is not, and is handled above.
        }
    }
}
