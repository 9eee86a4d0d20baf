#!/usr/bin/env bash
# History scan of a full 10 MiB XenServer metadata ring: `vrescue lvm history` against
# `pvck --dump metadata_search` on the same PV image, both as whole processes (bench/measure.py, best of N).
# Needs root (loop device to build the PV with real lvm2), lvm2 >= 2.03.09 (pvck on an image file), GNU time.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=${RUNS:-5}
work=$(mktemp -d /tmp/vrescue-bench-hist.XXXXXX)
dev=""
cleanup() { [[ -n "$dev" ]] && losetup -d "$dev" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

img="$work/pv.img"
truncate -s 256M "$img"
dev=$(losetup -f --show "$img")
cat >"$work/lvm.conf" <<CONF
devices { filter = [ "a|^$dev\$|", "r|.*|" ] obtain_device_list_from_udev = 0 use_devicesfile = 0 }
global { activation = 0 }
backup { backup = 0 archive = 0 }
CONF
export LVM_SYSTEM_DIR="$work" LVM_SUPPRESS_FD_WARNINGS=1
vg=VG_XenStorage-$(cat /proc/sys/kernel/random/uuid)
# XenServer layout (lvutil.createVG): vgcreate --metadatasize 10M, 4 MiB extents.
lvm vgcreate -q --metadatasize 10M "$vg" "$dev" >/dev/null 2>&1
# Fill the ring past one wrap: VG tags make every copy ~100 KB, then 130 small changes.
tags=$(for i in $(seq 0 99); do printf -- '--addtag t%d_%s ' "$i" "$(head -c 1000 /dev/zero | tr '\0' x)"; done)
lvm vgchange -q $tags "$vg" >/dev/null 2>&1
{ echo '#!/sbin/lvm'; for i in $(seq 0 129); do echo "vgchange --addtag n$i $vg"; done; } >"$work/fill.lvm"
lvm "$work/fill.lvm" >/dev/null 2>&1
losetup -d "$dev"; dev=""

pvck_count=$(lvm pvck --dump metadata_search "$img" 2>/dev/null | grep -c '^ *metadata at' || true)
"$repo/vrescue" lvm history "$img" --json >"$work/history.json" # builds the CLI once, outside the timing
ours_count=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(l['locations']) for v in d['vgs'] for l in v['versions']))" "$work/history.json")

cli="$repo/.build/cli/vrescue.dll"
pvck=$(python3 "$repo/bench/measure.py" --runs "$runs" --label pvck -- "$(command -v lvm || echo /usr/sbin/lvm)" pvck --dump metadata_search "$img")
ours=$(python3 "$repo/bench/measure.py" --runs "$runs" --label vrescue -- dotnet "$cli" lvm history "$img" --json)
python3 - "$pvck" "$ours" "$pvck_count" "$ours_count" <<'PY'
import json, sys
p, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"pvck": p, "vrescue": o, "copiesFoundByPvck": int(sys.argv[3]), "copiesFoundByVrescue": int(sys.argv[4]),
                  "ratioWallVrescueOverPvck": round(o["wall"] / p["wall"], 2)}, indent=2))
PY
