#!/usr/bin/env bash
# One guard check cycle on a system with N extra mounts, against node_exporter's filesystem collector.
# The mounts (tmpfs) live in a private mount + PID namespace (unshare -m -p --mount-proc), so /proc/1/mountinfo,
# which both tools read, is the namespace's own table and the host is untouched.
# Usage: sudo bench/guard/run.sh [--mounts 200] [--runs 5]     Needs: GNU time, util-linux, curl; optional prometheus-node-exporter.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
root=$(cd "$here/../.." && pwd)
mounts=200 runs=5
while (($#)); do
  case $1 in
    --mounts) mounts=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --inner) inner=1; shift ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done

if [[ -z ${inner:-} ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "run as root (mount namespaces)" >&2; exit 1; }
  out="$root/bench/results/guard"
  mkdir -p "$out"
  [[ -x "$out/bin/vrescue" ]] && [[ -z $(find "$root/src" -newer "$out/bin/vrescue" -name '*.cs' -print -quit) ]] \
    || "$root/packaging/guard/build.sh" "$out/bin" >/dev/null
  exec unshare -m -p -f --propagation private --mount-proc "$0" --inner --mounts "$mounts" --runs "$runs"
fi

out="$root/bench/results/guard"
work=$(mktemp -d /tmp/vrescue-bench-guard-XXXXXX)
trap 'for d in "$work"/m*; do umount -l "$d" 2>/dev/null || true; done; rm -rf "$work"' EXIT
for i in $(seq -w 1 "$mounts"); do
  mkdir -p "$work/m$i"
  mount -t tmpfs -o size=1m "m$i" "$work/m$i"
done
total=$(wc -l </proc/1/mountinfo)
echo "# $mounts tmpfs mounts added; /proc/1/mountinfo has $total lines; $(nproc) CPUs; kernel $(uname -r)"

cat >"$work/guard.yaml" <<YAML
interval: 60s
kernel_log: /dev/kmsg
write_probe: true
state_dirs: ["$work/state"]
metrics: {textfile_dir: "$work"}
channels: []
YAML
bin="$out/bin/vrescue"
m="$root/bench/measure.py"
python3 "$m" --runs "$runs" --label "vrescue guard check --json --write-probe (single file)" -- sh -c "\"$bin\" guard check --json --write-probe >/dev/null; exit 0"
python3 "$m" --runs "$runs" --label "vrescue guard run --once (single file)" -- "$bin" guard run --once --config "$work/guard.yaml"
echo "# metrics lines written: $(grep -c '^vrescue_guard_filesystem_writable{' "$work/vrescue_guard.prom") filesystems"

if ne=$(command -v prometheus-node-exporter || command -v node_exporter); then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/ne-once.sh" <<SH
#!/bin/sh
# start, one scrape of the filesystem collector, stop: what one check costs node_exporter
"$ne" --collector.disable-defaults --collector.filesystem --web.listen-address=127.0.0.1:$port >/dev/null 2>&1 &
pid=\$!
i=0; until curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; do i=\$((i+1)); [ \$i -gt 200 ] && exit 1; sleep 0.02; done
kill -TERM \$pid; wait \$pid || true
SH
  chmod +x "$work/ne-once.sh"
  python3 "$m" --runs "$runs" --label "node_exporter $("$ne" --version 2>&1 | awk 'NR==1{print $3}') filesystem collector: start + 1 scrape" -- "$work/ne-once.sh"
  echo "# node_exporter filesystems reported: $(python3 - "$ne" "$port" <<'PY'
import subprocess, sys, time, urllib.request
p = subprocess.Popen([sys.argv[1], "--collector.disable-defaults", "--collector.filesystem", f"--web.listen-address=127.0.0.1:{sys.argv[2]}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(200):
    try:
        t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/metrics").read().decode(); break
    except OSError:
        time.sleep(0.02)
p.terminate(); p.wait()
print(sum(1 for l in t.splitlines() if l.startswith("node_filesystem_readonly{")))
PY
)"
else
  echo "# node_exporter not installed (Debian: prometheus-node-exporter): vrescue recorded alone"
fi
