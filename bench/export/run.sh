#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Export of a multi-GiB dynamic VHD VDI to raw: `vrescue export` (reads the VHD out of its LV in an SR image,
# honours bitmaps, writes a sparse raw image and its sha256) against `qemu-img convert -f vpc -O raw` of the same
# VHD as a plain file, in the same run. Wall/CPU/peak RSS from bench/measure.py (GNU time). Needs root (loop device
# for lvm2), qemu-img, lvm2, python3, /usr/bin/time.
#
# usage: sudo bench/export/run.sh [--size-gib N] [--data-pct P] [--runs R] [--work DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SIZE_GIB=4; DATA_PCT=75; RUNS=3; WORK=${TMPDIR:-/tmp}/vrescue-bench-export
while (($#)); do
  case "$1" in
    --size-gib) SIZE_GIB=$2; shift 2 ;;
    --data-pct) DATA_PCT=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
MIB=$((1024 * 1024)); EXT=$((4 * MIB))
UUID=e5f6a7b8-0001-4c9d-8e0f-1a2b3c4d5e6f
SR=f6a7b8c9-0001-4d0e-9f1a-2b3c4d5e6f7a
VG=VG_XenStorage-$SR
mkdir -p "$WORK"; cd "$WORK"
rm -rf out-vrescue out-vrescue-nohash out-qemu.raw lvm

# 1. guest content: DATA_PCT % of the 2 MiB blocks hold pseudo-random data (a 64 MiB seed shifted per block), rest zeros
if [[ ! -f guest.raw || $(stat -c %s guest.raw) != $((SIZE_GIB * 1024 * MIB)) ]]; then
  head -c $((64 * MIB)) /dev/urandom >seed.bin
  python3 - "$SIZE_GIB" "$DATA_PCT" <<'PY'
import sys
size = int(sys.argv[1]) << 30; pct = int(sys.argv[2]); blk = 2 << 20
seed = open("seed.bin", "rb").read()
with open("guest.raw", "wb") as f:
    f.truncate(size)
    for b in range(size // blk):
        if (b * 37) % 100 < pct:
            off = (b * 4096 * 7) % (len(seed) - blk)
            f.seek(b * blk); f.write(seed[off:off + blk])
PY
  rm -f guest.vhd
fi
[[ -f guest.vhd ]] || qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on guest.raw guest.vhd
VHD_SIZE=$(stat -c %s guest.vhd)
LV_SIZE=$(( (VHD_SIZE + EXT - 1) / EXT * EXT ))

# 2. SR image: one VG_XenStorage VG, one VHD-<uuid> LV, the VHD laid in as libvhd does on a block device
IMG_SIZE=$(( LV_SIZE + 64 * MIB ))
if [[ ! -f sr.img || $(stat -c %s sr.img) != "$IMG_SIZE" ]]; then
  rm -f sr.img; truncate -s "$IMG_SIZE" sr.img
  dev=$(losetup -f --show sr.img); trap 'losetup -d "$dev" 2>/dev/null || true' EXIT
  mkdir -p lvm/lock
  printf 'devices { filter = [ "a|^%s$|", "r|.*|" ] global_filter = [ "a|^%s$|", "r|.*|" ] use_devicesfile = 0 obtain_device_list_from_udev = 0 hints = "none" }\nglobal { activation = 0 locking_dir = "%s" }\nbackup { backup = 0 archive = 0 }\n' "$dev" "$dev" "$WORK/lvm/lock" >lvm/lvm.conf
  export LVM_SYSTEM_DIR=$WORK/lvm LVM_SUPPRESS_FD_WARNINGS=1
  vgcreate -q --metadatasize 10M "$VG" "$dev" >/dev/null 2>&1
  lvcreate -q -an -Zn -y -n "VHD-$UUID" -L "$((LV_SIZE / MIB))M" "$VG" >/dev/null 2>&1
  PE0=$(pvs --noheadings --nosuffix --units b -o pe_start "$dev" 2>/dev/null | tr -d ' ')
  PE=$(lvs --noheadings -o seg_pe_ranges "$VG/VHD-$UUID" 2>/dev/null | sed 's/.*:\([0-9]*\)-.*/\1/' | tr -d ' ')
  losetup -d "$dev"; trap - EXIT
  START=$((PE0 + PE * EXT))
  dd if=guest.vhd of=sr.img bs=4M iflag=count_bytes oflag=seek_bytes conv=notrunc,sparse status=none seek="$START" count=$((VHD_SIZE - 512))
  dd if=guest.vhd of=sr.img bs=512 iflag=skip_bytes oflag=seek_bytes conv=notrunc status=none skip=$((VHD_SIZE - 512)) seek=$((START + LV_SIZE - 512)) count=1
fi

WANT=$(sha256sum <guest.raw | cut -d' ' -f1)
"$REPO/vrescue" --help >/dev/null            # build outside the measurement
cat guest.vhd sr.img >/dev/null              # both start from the page cache

# qemu-img's default output cache mode for convert is "unsafe" (no flush); vrescue fsyncs each file before the rename
# that marks it complete, so the fair peer is -t writeback (flushes on close). Both are reported.
QU=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label qemu-img-unsafe -- qemu-img convert -f vpc -O raw guest.vhd out-qemu.raw)
Q=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label qemu-img-writeback -- qemu-img convert -t writeback -f vpc -O raw guest.vhd out-qemu.raw)
QN=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label qemu-img-none -- qemu-img convert -t none -f vpc -O raw guest.vhd out-qemu.raw)
# Equal work for vrescue's default (a durable copy plus the sha256 of the guest content that manifest.json carries):
# qemu-img -t writeback, then the fastest sha256 on the machine (OpenSSL, SHA-NI where the CPU has it).
QH=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label qemu-img-writeback+openssl-sha256 -- bash -c 'qemu-img convert -t writeback -f vpc -O raw guest.vhd out-qemu.raw && openssl dgst -sha256 out-qemu.raw')
V=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label vrescue -- "$REPO/vrescue" export sr.img --out out-vrescue --vdi "$UUID" --format raw --json)
VN=$(python3 "$REPO/bench/measure.py" --runs "$RUNS" --label vrescue-no-sha256 -- "$REPO/vrescue" export sr.img --out out-vrescue-nohash --vdi "$UUID" --format raw --no-sha256 --json)
[[ $(sha256sum <out-vrescue-nohash/$UUID.raw | cut -d' ' -f1) == "$WANT" ]] || { echo "vrescue --no-sha256 output differs" >&2; exit 1; }
[[ $(sha256sum <out-qemu.raw | cut -d' ' -f1) == "$WANT" ]] || { echo "qemu-img output differs" >&2; exit 1; }
[[ $(sha256sum <out-vrescue/$UUID.raw | cut -d' ' -f1) == "$WANT" ]] || { echo "vrescue output differs" >&2; exit 1; }
python3 - "$Q" "$V" "$SIZE_GIB" "$DATA_PCT" "$(nproc)" "$QU" "$QN" "$(cut -d' ' -f1-3 /proc/loadavg)" "$QH" "$VN" <<'PY'
import json, sys
q, v, qu, qn = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[6]), json.loads(sys.argv[7]); gib = int(sys.argv[3])
qh, vn = json.loads(sys.argv[9]), json.loads(sys.argv[10])
print(json.dumps({"virtualGiB": gib, "dataPct": int(sys.argv[4]), "cpus": int(sys.argv[5]), "loadAvg": sys.argv[8],
                  "qemuImgUnsafe": qu, "qemuImg": q, "qemuImgNone": qn, "qemuImgPlusSha256": qh, "vrescue": v, "vrescueNoSha256": vn,
                  "throughputRatio": round(q["wall"] / v["wall"], 2), "throughputRatioVsUnsafe": round(qu["wall"] / v["wall"], 2),
                  "throughputRatioVsNone": round(qn["wall"] / v["wall"], 2),
                  "throughputRatioEqualWork": round(qh["wall"] / v["wall"], 2),
                  "throughputRatioNoSha256VsWriteback": round(q["wall"] / vn["wall"], 2),
                  "throughputRatioNoSha256VsUnsafe": round(qu["wall"] / vn["wall"], 2),
                  "qemuGiBps": round(gib / q["wall"], 2), "vrescueGiBps": round(gib / v["wall"], 2)}, indent=1))
PY
