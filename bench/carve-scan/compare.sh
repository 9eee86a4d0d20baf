#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Same-run before/after of the carve scan (bench/carve/SCAN.md): builds CarveBench and ScanBench from git revision
# BEFORE (git archive; ScanBench taken from this checkout) and from this checkout, then alternates dd, carve before,
# carve after, scan-only before, scan-only after, RUNS times, on the dense 4 GiB image (built as in run.sh).
# ratio = dd seconds / scan seconds. usage: bench/carve-scan/compare.sh BEFORE [WORKDIR] [RUNS]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BEFORE=$1
W=${2:-/tmp/vrescue-carve-scan}
RUNS=${3:-7}
mkdir -p "$W"
rm -rf "$W/before-src" && mkdir -p "$W/before-src"
git -C "$REPO" archive "$BEFORE" | tar -x -C "$W/before-src"
rm -rf "$W/before-src/bench/carve-scan" && cp -r "$HERE" "$W/before-src/bench/carve-scan"
for side in before after; do
  root=$REPO; [[ $side == before ]] && root=$W/before-src
  dotnet build "$root/bench/carve/CarveBench.csproj" -c Release -o "$W/$side-carve" --nologo -v q -clp:ErrorsOnly >/dev/null
  dotnet build "$root/bench/carve-scan/ScanBench.csproj" -c Release -o "$W/$side-scan" --nologo -v q -clp:ErrorsOnly >/dev/null
done
img=$W/dense.img
if [[ ! -f $img ]]; then
  dd if=/dev/urandom of="$img" bs=4M count=1027 status=none
  dotnet "$W/after-carve/CarveBench.dll" make "$img" 1024 120 >/dev/null
fi
cat "$img" >/dev/null
field() { grep -o "\"$1\":[0-9.eE+-]*" | cut -d: -f2; }
echo "before = $(git -C "$REPO" rev-parse --short "$BEFORE"), after = $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- src || echo ' + uncommitted')"
echo "load before: $(uptime)"
out=$W/compare.txt
: >"$out"
for run in $(seq 1 "$RUNS"); do
  t0=$(date +%s.%N); dd if="$img" of=/dev/null bs=4M status=none; t1=$(date +%s.%N)
  d=$(echo "$t1 - $t0" | bc)
  cb=$(dotnet "$W/before-carve/CarveBench.dll" carve "$img" | field scanSeconds)
  ca=$(dotnet "$W/after-carve/CarveBench.dll" carve "$img" | field scanSeconds)
  sb=$(dotnet "$W/before-scan/ScanBench.dll" "$img" | field scanSeconds)
  sa=$(dotnet "$W/after-scan/ScanBench.dll" "$img" | field scanSeconds)
  echo "$d $cb $ca $sb $sa" | tee -a "$out" | awk -v r="$run" '{printf "run %d: dd %.3f | carve scan phase before %.3f (%.2f) after %.3f (%.2f) | extent scan before %.3f (%.2f) after %.3f (%.2f)\n", r, $1, $2, $1/$2, $3, $1/$3, $4, $1/$4, $5, $1/$5}'
done
echo "load after: $(uptime)"
python3 - "$out" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
names = ["dd", "carve scan phase before", "carve scan phase after", "extent scan before", "extent scan after"]
for i, n in enumerate(names):
    c = [r[i] for r in rows]
    line = f"{n:24s} min {min(c):.3f} s  median {statistics.median(c):.3f} s"
    if i:
        q = [r[0] / r[i] for r in rows]
        line += f"  ratio per run median {statistics.median(q):.2f} (min {min(q):.2f}, max {max(q):.2f})"
    print(line)
PY
