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
        : this(null, 0, sizeBytes)
    {
    }

    /// <summary>
    /// Attaches an existing image (not deleted on dispose) at <paramref name="offsetBytes"/> for
    /// <paramref name="sizeBytes"/>, e.g. a partition of a disk image; with a null path a new sparse image is made.
    /// </summary>
    public LoopLvm(string? imagePath, long offsetBytes, long sizeBytes)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vrescue-lvm-").FullName;
        ImagePath = imagePath ?? Path.Combine(Directory, "pv.img");
        if (imagePath is null)
        {
            using var f = new FileStream(ImagePath, FileMode.CreateNew);
            f.SetLength(sizeBytes);
        }

        Device = imagePath is null
            ? Repo.Run("losetup", $"-f --show \"{ImagePath}\"").Trim()
            : Repo.Run("losetup", $"-f --show -o {offsetBytes} --sizelimit {sizeBytes} \"{ImagePath}\"").Trim();
        File.WriteAllText(Path.Combine(Directory, "lvm.conf"), $$"""
            devices {
                filter = [ "a|^{{Device}}$|", "r|.*|" ]
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

    /// <summary>Temp directory holding the image and lvm.conf.</summary>
    public string Directory { get; }

    public string ImagePath { get; }

    /// <summary>/dev/loopN.</summary>
    public string Device { get; }

    /// <summary>Runs <c>lvm &lt;arguments&gt;</c> with the isolated configuration and returns stdout.</summary>
    public string Lvm(string arguments, bool check = true) =>
        Repo.Run(Repo.Which("lvm") ?? "lvm", arguments, _env, check);

    /// <summary>Runs an lvm report command with --reportformat json and returns the rows of its first report.</summary>
    public List<JsonElement> Report(string command, string key, string fields) =>
        JsonDocument.Parse(Lvm($"{command} --reportformat json --units b --nosuffix -o {fields}"))
            .RootElement.GetProperty("report")[0].GetProperty(key).EnumerateArray().ToList();

    public void Dispose()
    {
        Repo.Run("losetup", $"-d {Device}", check: false);
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
