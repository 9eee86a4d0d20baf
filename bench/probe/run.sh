#!/usr/bin/env bash
# Benchmark: `vrescue probe` against `pvs` + `lvs --segments` (lvm2) on the same multi-GiB SR image.
# Builds (once, cached) an SR with real lvm2: VG_XenStorage-<uuid> with --metadatasize 10M, MGT, N VHD LVs
# fragmented by alternating lvextend, each holding a qemu-img dynamic VHD (footer copy at 0, footer at LV end).
# Prints one JSON line per tool (bench/measure.py: best wall of RUNS, CPU, peak RSS) and the ratio.
# usage: sudo bench/probe/run.sh [--size-gib 8] [--vdis 60] [--rounds 4] [--runs 5]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../.." && pwd)
size_gib=8 vdis=60 rounds=4 runs=5
while (($#)); do case $1 in
  --size-gib) size_gib=$2; shift 2;; --vdis) vdis=$2; shift 2;; --rounds) rounds=$2; shift 2;; --runs) runs=$2; shift 2;;
  *) echo "unknown option $1" >&2; exit 64;; esac; done
work=${VRESCUE_BENCH_DIR:-/var/tmp/vrescue-bench}/probe-$size_gib-$vdis-$rounds
mkdir -p "$work"; img=$work/sr.img
sr=9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a vg=VG_XenStorage-$sr

conf=$(mktemp -d); dev=
cleanup() { [[ -n $dev ]] && losetup -d "$dev" 2>/dev/null || true; rm -rf "$conf"; }
trap cleanup EXIT
attach() {
  dev=$(losetup -f --show "$img")
  cat > "$conf/lvm.conf" <<CONF
devices { filter = [ "a|^$dev\$|", "r|.*|" ] scan = [ "/dev" ] obtain_device_list_from_udev = 0 use_devicesfile = 0 }
global { activation = 0 use_lvmetad = 0 }
backup { backup = 0 archive = 0 }
CONF
}
lvmx() { LVM_SYSTEM_DIR=$conf LVM_SUPPRESS_FD_WARNINGS=1 lvm "$@" 2>/dev/null; }

if [[ ! -f $work/.done ]]; then
  echo "building $size_gib GiB SR with $vdis VHD VDIs x $rounds extend rounds in $work ..." >&2
  rm -f "$img"; truncate -s "${size_gib}G" "$img"; attach
  lvmx vgcreate -q --metadatasize 10M "$vg" "$dev" >/dev/null
  lvmx lvcreate -q -an -Zn -y -n MGT -L 4M "$vg" >/dev/null
  for i in $(seq 1 "$vdis"); do lvmx lvcreate -q -an -Zn -y -n "VHD-$(printf '%08x' "$i")-0000-4000-8000-000000000000" -L 8M "$vg" >/dev/null; done
  for r in $(seq 1 "$rounds"); do for i in $(seq 1 "$vdis"); do
    lvmx lvextend -q -y -L +8M "$vg/VHD-$(printf '%08x' "$i")-0000-4000-8000-000000000000" >/dev/null; done; done
  qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$work/head.vhd" 20G
  lvmx lvs --reportformat json --units b --nosuffix --segments -o lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges "$vg" > "$work/lvs.json"
  pe_start=$(lvmx pvs --units b --nosuffix --noheadings -o pe_start "$dev" | tr -d ' ')
  python3 - "$img" "$work/lvs.json" "$work/head.vhd" "$pe_start" "$sr" <<'PY'
import json, sys
img, lvs, head, pe_start, sr = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ext = 4 << 20
vhd = open(head, 'rb').read()
body, footer = vhd[:-512], vhd[-512:]
segs = {}
for s in json.load(open(lvs))['report'][0]['seg']:
    pe = int(s['seg_pe_ranges'].rsplit(':', 1)[1].split('-')[0])
    segs.setdefault(s['lv_name'], []).append((int(s['seg_start_pe']), int(s['seg_size_pe']), pe))
def phys(name, lv_off):
    le = lv_off // ext
    for start, count, pe in segs[name]:
        if start <= le < start + count:
            return pe_start + (pe + le - start) * ext + lv_off % ext
def sector(text):
    b = text.encode()
    return b + b' ' * (512 - len(b))
# MGT per xapi-project/sm srmetadata.py: header, SR sectors, one 1024-byte record per VDI.
vdis = sorted(n[4:] for n in segs if n.startswith('VHD-'))
mgt = sector('XSSM:' + str(2048 + 1024 * len(vdis)).ljust(10) + ':1:2')
mgt += sector('<?xml version="1.0" ?><uuid>%s</uuid><allocation>thick</allocation>' % sr)
mgt += sector('<name_label>bench SR</name_label>') + sector('<name_description></name_description>')
for i, u in enumerate(vdis):
    mgt += sector('<vdi><name_label>vm%03d disk</name_label><name_description></name_description>' % i)
    mgt += sector('<uuid>%s</uuid><is_a_snapshot>0</is_a_snapshot><snapshot_of></snapshot_of><snapshot_time></snapshot_time>'
                  '<type>user</type><vdi_type>vhd</vdi_type><read_only>0</read_only><managed>1</managed>'
                  '<metadata_of_pool></metadata_of_pool><deleted>0</deleted></vdi>' % u)
with open(img, 'r+b') as f:
    f.seek(phys('MGT', 0)); f.write(mgt)
    for name, runs in segs.items():
        if not name.startswith('VHD-'):
            continue
        size = max(s + c for s, c, _ in runs) * ext
        for off in range(0, len(body), 512 * 8):
            chunk = body[off:off + 4096]
            f.seek(phys(name, off)); f.write(chunk)
        f.seek(phys(name, size - 512)); f.write(footer)
PY
  losetup -d "$dev"; dev=
  touch "$work/.done"
fi

attach
"$repo/vrescue" --help >/dev/null   # build once outside the timing
cli=$repo/.build/cli/vrescue.dll
lvs_count=$(lvmx lvs --noheadings -o lv_name "$vg" | wc -l)
v=$(python3 "$repo/bench/measure.py" --runs "$runs" --label "vrescue probe" -- dotnet "$cli" probe "$img" --json)
p=$(python3 "$repo/bench/measure.py" --runs "$runs" --label "pvs" -- env LVM_SYSTEM_DIR="$conf" LVM_SUPPRESS_FD_WARNINGS=1 lvm pvs -o pv_name,pv_uuid,pe_start,dev_size "$dev")
l=$(python3 "$repo/bench/measure.py" --runs "$runs" --label "lvs --segments" -- env LVM_SYSTEM_DIR="$conf" LVM_SUPPRESS_FD_WARNINGS=1 lvm lvs --segments -o lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges "$vg")
echo "$v"; echo "$p"; echo "$l"
python3 - "$v" "$p" "$l" "$size_gib" "$lvs_count" <<'PY'
import json, sys
v, p, l = (json.loads(a) for a in sys.argv[1:4])
peer = p['wall'] + l['wall']
print(json.dumps({"image_GiB": int(sys.argv[4]), "lvs": int(sys.argv[5]), "vrescue_wall_s": v['wall'],
                  "pvs_plus_lvs_wall_s": round(peer, 4), "ratio_vrescue_over_peer": round(v['wall'] / peer, 2),
                  "vrescue_peak_rss_MiB": round(v['rssKiB'] / 1024, 1),
                  "lvm_peak_rss_MiB": round(max(p['rssKiB'], l['rssKiB']) / 1024, 1)}))
PY
