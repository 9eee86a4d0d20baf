// SPDX-License-Identifier: MIT
// Scan-only timing for the carve (bench/carve/SCAN.md): the two parts of Carver's "scan" phase, apart.
//   ScanBench IMAGE [PE_START_BYTES]   prints one JSON line: probeSeconds = CarveCurrentVgReader.Read (the
//                                      current-metadata probe Carver runs first), scanSeconds = CarveScanner.Scan
//                                      of every extent (the read and per-extent analysis), one after the other;
//                                      scanCpuSeconds = user + system CPU of the process during the extent scan.
using System.Diagnostics;
using System.Text.Json;
using VRescue.Recovery.Carving;
using VRescue.Storage;

if (args is not [var image, ..] || args.Length > 2)
{
    Console.Error.WriteLine("usage: ScanBench IMAGE [PE_START_BYTES]");
    return 64;
}

var options = new CarveOptions();
var peStart = args.Length == 2 ? long.Parse(args[1]) : 11L << 20;
using var source = FileBlockSource.Open(image);
var watch = Stopwatch.StartNew();
var current = CarveCurrentVgReader.Read([source]);
var probe = watch.Elapsed;
watch.Restart();
var cpu = Process.GetCurrentProcess().TotalProcessorTime;
var count = Math.Max(0, (source.LengthBytes - peStart) / options.ExtentSizeBytes);
var pes = CarveScanner.Scan(source, 0, peStart, options.ExtentSizeBytes, count, options.Parallelism, null, default);
var scan = watch.Elapsed;
var scanCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
Console.WriteLine(JsonSerializer.Serialize(new
{
    extents = pes.Length,
    currentVgs = current.Count,
    probeSeconds = probe.TotalSeconds,
    scanSeconds = scan.TotalSeconds,
    scanCpuSeconds = scanCpu.TotalSeconds,
    scannedBytes = count * options.ExtentSizeBytes,
    parallelism = options.Parallelism,
}));
return 0;
