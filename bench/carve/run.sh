#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Carving benchmark (README.md here): (1) scan of a dense multi-GiB PV vs `dd bs=4M` on the same image;
# (2) solver time on synthetic sparse PVs of 2,500 .. 20,000 extents with 100+ VDIs.
# usage: bench/carve/run.sh [WORKDIR]   (default /tmp/vrescue-carve-bench; needs ~4 GiB free)
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
W=${1:-/tmp/vrescue-carve-bench}
mkdir -p "$W"
dotnet build "$HERE/CarveBench.csproj" -c Release -o "$W/bin" --nologo -v q -clp:ErrorsOnly >/dev/null
B=(dotnet "$W/bin/CarveBench.dll")

echo "== load: $(uptime)"   # the machine may be shared: timings mean little without it
echo "== scan vs dd: 4 GiB dense image (random data + 120 interleaved VHD LVs)"
img=$W/dense.img
if [[ ! -f $img ]]; then
  dd if=/dev/urandom of="$img" bs=4M count=1027 status=none
  "${B[@]}" make "$img" 1024 120 >/dev/null
fi
for run in 1 2 3; do
  t0=$(date +%s.%N); dd if="$img" of=/dev/null bs=4M status=none; t1=$(date +%s.%N)
  dd_s=$(echo "$t1 - $t0" | bc)
  carve=$("${B[@]}" carve "$img")
  echo "run $run: dd ${dd_s} s; carve $carve"
done

echo "== solver growth: sparse synthetic PVs"
for n in 2500 5000 10000 20000; do
  s=$W/sparse-$n.img
  rm -f "$s"
  v=$(( n / 80 > 100 ? n / 80 : 100 ))
  "${B[@]}" make "$s" "$n" "$v" >/dev/null
  echo "extents $n vdis $v: $("${B[@]}" carve "$s")"
  rm -f "$s"
done
echo "== load: $(uptime)"
