#!/usr/bin/env bash
# Whole-disk signature search (`vrescue partitions scan`) against `dd if=IMAGE of=/dev/null bs=4M` on the same
# multi-GiB image in the same run. Warm page cache for both (the image is read once first): the figure compares
# our read + search loop with the plainest sequential reader, not with the disk.
#   bench/partitions-scan/run.sh [--size-gib N] [--rounds N] [--image PATH]
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$here/../.." && pwd)
size_gib=4
rounds=5
image=${TMPDIR:-/tmp}/vrescue-bench-partscan.img
while (($#)); do
  case "$1" in
    --size-gib) size_gib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

fixture=${VRESCUE_FIXTURE_CACHE:-$repo/tests/fixtures/cache}/sr-gpt/image.img
[[ -f $fixture ]] || { echo "run.sh: needs the sr-gpt fixture (tests/fixtures/generate.sh)" >&2; exit 1; }
bytes=$((size_gib * 1024 * 1024 * 1024))
if [[ ! -f $image || $(stat -c %s "$image") -ne $bytes ]]; then
  echo "building $size_gib GiB image $image: random data (non-sparse, every read is real), the sr-gpt disk at 1 GiB"
  head -c "$bytes" /dev/urandom >"$image"
  dd if="$fixture" of="$image" bs=4M seek=256 conv=notrunc status=none
fi

"$repo/vrescue" --help >/dev/null   # build once, outside the timing
cat "$image" >/dev/null              # warm the page cache

dd_rates=() scan_rates=() proc_rates=()
for ((r = 1; r <= rounds; r++)); do
  t0=$(date +%s.%N)
  dd if="$image" of=/dev/null bs=4M status=none
  t1=$(date +%s.%N)
  dd_rates+=("$(echo "$bytes / ($t1 - $t0) / 1000000" | bc -l)")

  t0=$(date +%s.%N)
  json=$("$repo/vrescue" partitions scan "$image" --json || true)
  t1=$(date +%s.%N)
  proc_rates+=("$(echo "$bytes / ($t1 - $t0) / 1000000" | bc -l)")
  scan_rates+=("$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["scan"]["megabytesPerSecond"])' <<<"$json")")
  printf 'round %d: dd %.0f MB/s   scan loop %.0f MB/s   vrescue process (incl. startup, table read, evidence) %.0f MB/s\n' \
    "$r" "${dd_rates[-1]}" "${scan_rates[-1]}" "${proc_rates[-1]}"
done

best() { printf '%s\n' "$@" | sort -g | tail -1; }
dd_best=$(best "${dd_rates[@]}"); scan_best=$(best "${scan_rates[@]}"); proc_best=$(best "${proc_rates[@]}")
printf 'best of %d: dd %.0f MB/s, scan loop %.0f MB/s (%.2f of dd), whole process %.0f MB/s (%.2f of dd)\n' "$rounds" \
  "$dd_best" "$scan_best" "$(echo "$scan_best / $dd_best" | bc -l)" "$proc_best" "$(echo "$proc_best / $dd_best" | bc -l)"
python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("found:", [(f["kind"], f["startBytes"]) for f in d["found"] if f["nestedIn"] is None], "proposed from", d["proposalSource"])' <<<"$json"
