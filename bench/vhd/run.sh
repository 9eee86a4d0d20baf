#!/usr/bin/env bash
# Benchmark: `vrescue vhd check` and `vhd repair` of a multi-GiB VHD against `vhdiinfo` and `qemu-img convert`
# of the same file. Builds (once, cached) a raw image of SIZE GiB with random data in every 3rd 2 MiB block,
# converts it to a XenServer-layout dynamic VHD by `vrescue vhd repair --format vhd` of a qemu-img VHD,
# and a copy with its end footer killed (0xC7) for repair. check (exit 0 needed by measure.py) runs on the intact file. Prints bench/measure.py JSON lines and ratios.
# usage: bench/vhd/run.sh [--size-gib 4] [--runs 3]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
size_gib=4 runs=3
while (($#)); do case $1 in
  --size-gib) size_gib=$2; shift 2;; --runs) runs=$2; shift 2;;
  *) echo "unknown option $1" >&2; exit 64;; esac; done
work=${VRESCUE_BENCH_DIR:-/var/tmp/vrescue-bench}/vhd-$size_gib
mkdir -p "$work"
vr() { "$repo/vrescue" "$@"; }
if [[ ! -f $work/.done ]]; then
  echo "building $size_gib GiB VHD in $work ..." >&2
  rm -f "$work"/*; truncate -s "${size_gib}G" "$work/src.raw"
  python3 - "$work/src.raw" "$size_gib" <<'PY'
import os, sys
path, gib = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    for block in range(0, gib * 512, 3):
        f.seek(block * 2 * 1024 * 1024); f.write(os.urandom(2 * 1024 * 1024))
PY
  qemu-img convert -f raw -O vpc -o subformat=dynamic "$work/src.raw" "$work/q.vhd"
  vr vhd repair "$work/q.vhd" --out "$work/xen.vhd" --format vhd >/dev/null
  cp --sparse=always "$work/xen.vhd" "$work/killed.vhd"
  python3 -c "import os,sys; f=open(sys.argv[1],'r+b'); f.seek(-512,2); f.write(b'\xc7'*512)" "$work/killed.vhd"
  touch "$work/.done"
fi
vr --help >/dev/null   # build outside the timing
m() { python3 "$repo/bench/measure.py" --runs "$runs" --label "$1" -- "${@:2}"; }
m "vrescue vhd check" "$repo/.build/cli/vrescue" vhd check "$work/xen.vhd" --json | tee "$work/r1"
m "vhdiinfo" vhdiinfo "$work/xen.vhd" | tee "$work/r2"
m "vrescue vhd repair --format raw" "$repo/.build/cli/vrescue" vhd repair "$work/killed.vhd" --out "$work/out.raw" --format raw | tee "$work/r3"
m "qemu-img convert -O raw" qemu-img convert -f vpc -O raw "$work/killed.vhd" "$work/q.raw" | tee "$work/r4"
m "vrescue vhd repair --format vhd" "$repo/.build/cli/vrescue" vhd repair "$work/killed.vhd" --out "$work/out.vhd" | tee "$work/r5"
m "qemu-img convert -O vpc" qemu-img convert -f vpc -O vpc "$work/killed.vhd" "$work/q2.vhd" | tee "$work/r6"
# qemu-img's default cache mode for convert output is "unsafe" (no flush); vrescue fsyncs before renaming its output
# into place, so the equal-durability peer is -t writeback (flush on close).
m "qemu-img convert -t writeback -O raw" qemu-img convert -t writeback -f vpc -O raw "$work/killed.vhd" "$work/q.raw" | tee "$work/r7"
m "qemu-img convert -t writeback -O vpc" qemu-img convert -t writeback -f vpc -O vpc "$work/killed.vhd" "$work/q2.vhd" | tee "$work/r8"
cmp "$work/out.raw" "$work/q.raw" && echo "repair --format raw output equals qemu-img convert output"
python3 - "$work" <<'PY'
import json, sys
d = sys.argv[1]; r = {i: json.loads(open(f"{d}/r{i}").read()) for i in range(1, 9)}
for a, b in ((1, 2), (3, 4), (3, 7), (5, 6), (5, 8)):
    print(f"{r[a]['label']} / {r[b]['label']}: wall x{r[a]['wall'] / r[b]['wall']:.2f}, peak RSS x{r[a]['rssKiB'] / r[b]['rssKiB']:.2f}")
PY
