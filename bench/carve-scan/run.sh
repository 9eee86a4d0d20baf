#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Carve scan vs raw read (bench/carve/SCAN.md): on the 4 GiB dense image of bench/carve/run.sh, alternates
# `dd if=IMAGE of=/dev/null bs=4M`, `CarveBench carve` (Carver's scanSeconds) and ScanBench (the current-metadata
# probe and the extent scan timed apart), RUNS times, warm page cache; prints each run and min / median.
# ratio = dd seconds / scan seconds = scan throughput / dd throughput (goal >= 0.9).
# COLD=1 (root): drop the page cache before every timed command instead, so both read the disk.
# usage: [COLD=1] bench/carve-scan/run.sh [WORKDIR] [RUNS]   (default /tmp/vrescue-carve-scan, 7 runs; needs ~4 GiB free)
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
W=${1:-/tmp/vrescue-carve-scan}
RUNS=${2:-7}
mkdir -p "$W"
dotnet build "$HERE/../carve/CarveBench.csproj" -c Release -o "$W/carve-bin" --nologo -v q -clp:ErrorsOnly >/dev/null
dotnet build "$HERE/ScanBench.csproj" -c Release -o "$W/scan-bin" --nologo -v q -clp:ErrorsOnly >/dev/null
img=$W/dense.img
if [[ ! -f $img ]]; then
  dd if=/dev/urandom of="$img" bs=4M count=1027 status=none
  dotnet "$W/carve-bin/CarveBench.dll" make "$img" 1024 120 >/dev/null
fi
cold() { if [[ ${COLD:-0} == 1 ]]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }
[[ ${COLD:-0} == 1 ]] || cat "$img" >/dev/null
field() { grep -o "\"$1\":[0-9.eE+-]*" | cut -d: -f2; }
echo "load before: $(uptime)"
rows=()
for run in $(seq 1 "$RUNS"); do
  cold; t0=$(date +%s.%N); dd if="$img" of=/dev/null bs=4M status=none; t1=$(date +%s.%N)
  dd_s=$(echo "$t1 - $t0" | bc)
  cold; carve=$(dotnet "$W/carve-bin/CarveBench.dll" carve "$img" | field scanSeconds)
  cold; only=$(dotnet "$W/scan-bin/ScanBench.dll" "$img")
  probe=$(echo "$only" | field probeSeconds)
  scan=$(echo "$only" | field scanSeconds)
  rows+=("$dd_s $carve $probe $scan")
  printf 'run %d: dd %.3f s; carve scan phase %.3f s (ratio %.2f); probe %.3f s + extent scan %.3f s (ratio %.2f)\n' \
    "$run" "$dd_s" "$carve" "$(echo "$dd_s / $carve" | bc -l)" "$probe" "$scan" "$(echo "$dd_s / $scan" | bc -l)"
done
echo "load after: $(uptime)"
printf '%s\n' "${rows[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
cols = list(zip(*rows))
names = ["dd", "carve scan phase", "probe", "extent scan"]
for n, c in zip(names, cols):
    print(f"{n:17s} min {min(c):.3f} s  median {statistics.median(c):.3f} s")
for n, i in (("carve scan phase", 1), ("extent scan", 3)):
    r = [row[0] / row[i] for row in rows]
    print(f"ratio dd/{n:16s} per run median {statistics.median(r):.2f} (min {min(r):.2f}, max {max(r):.2f}); of medians {statistics.median(cols[0]) / statistics.median(cols[i]):.2f}")
'
