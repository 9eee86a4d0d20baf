#!/usr/bin/env bash
# Applies the partition damage recipes of tests/VRescue.Cli.Tests/Partitions to copies of the sr-gpt fixture and
# prints what `vrescue partitions scan` and `testdisk /log /cmd IMAGE analyze,search` (TestDisk's scripted mode:
# quick search, then deeper search) each find. TestDisk's findings are taken from the testdisk.log it writes.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$here/../.." && pwd)
fixture=${VRESCUE_FIXTURE_CACHE:-$repo/tests/fixtures/cache}/sr-gpt/image.img
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sectors=$(($(stat -c %s "$fixture") / 512))
zero() { dd if=/dev/zero of="$1" bs=512 seek="$2" count="$3" conv=notrunc status=none; }

for recipe in healthy primary-gpt-zeroed both-gpt-zeroed protective-mbr-zeroed windows-initialised; do
  img=$work/$recipe.img
  cp --sparse=always "$fixture" "$img"
  case $recipe in
    primary-gpt-zeroed) zero "$img" 1 33 ;;
    both-gpt-zeroed) zero "$img" 1 33; zero "$img" $((sectors - 33)) 33 ;;
    protective-mbr-zeroed) zero "$img" 0 1 ;;
    windows-initialised) zero "$img" 0 2048; echo 2048,100M,7 | sfdisk --quiet --no-reread --no-tell-kernel --label dos "$img" ;;
  esac
  echo "=== $recipe"
  json=$("$repo/vrescue" partitions scan "$img" --json || true)
  python3 -c '
import json, sys
d = json.load(sys.stdin)
top = [f for f in d["found"] if f["nestedIn"] is None]
print("vrescue : table %s primary %s backup %s; found %s; %d nested; proposed %s from %s (%s): %s" % (
    d["table"], d["primaryValid"], d["backupValid"],
    ", ".join("%s@%d+%s" % (f["kind"], f["startBytes"] // 512, (f["sizeBytes"] or 0) // 512) for f in top),
    len(d["found"]) - len(top), d["proposedTable"], d["proposalSource"], d["confidence"],
    ", ".join("#%d %s@%d+%d" % (p["index"], p["mbrType"], p["startBytes"] // 512, p["sizeBytes"] // 512) for p in d["proposed"])))' <<<"$json"
  (cd "$work" && rm -f testdisk.log && timeout 600 testdisk /log /cmd "$img" analyze,search >/dev/null 2>&1 || true)
  python3 - "$work/testdisk.log" <<'PY' || echo "testdisk: (log not parsed)"
import re, sys
log = open(sys.argv[1], errors="replace").read()
geo = re.search(r"CHS (\d+) (\d+) (\d+)", log)
heads, spt = int(geo.group(2)), int(geo.group(3))
def lba(c, h, s): return (int(c) * heads + int(h)) * spt + int(s) - 1
chs = re.compile(r"^\s*(?:\d+\s+)?(?:([*PLDE])\s+)?([A-Za-z][A-Za-z0-9 /.]*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+\[(.*)\])?$")
lbarow = re.compile(r"^\s*(?:\d+\s+)?(?:([*PLDE])\s+)?([A-Za-z][A-Za-z0-9 /.]*?)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+\[(.*)\])?$")
def rows(block):
    out = []
    for l in block.splitlines():
        m = chs.match(l)
        if m:
            out.append(((m.group(1) or "").strip(), m.group(2).strip(), lba(m.group(3), m.group(4), m.group(5)), int(m.group(9))))
            continue
        m = lbarow.match(l)
        if m:
            out.append(((m.group(1) or "").strip(), m.group(2).strip(), int(m.group(3)), int(m.group(5))))
    return out
current = log.split("Current partition structure:")[1].split("search_part()")[0] if "Current partition structure:" in log else ""
quick = log.split("search_part()")[1].split("interface_write()")[0] if "search_part()" in log else ""
final = log.split("interface_write()")[-1] if "interface_write()" in log else ""
fmt = lambda rs: ", ".join("%s%s@%d+%d" % (f + " " if f else "", n, a, z) for f, n, a, z in rs) or "nothing"
print("testdisk: current %s; quick search %s; after deeper search proposes %s" % (fmt(rows(current)), fmt(rows(quick)), fmt(rows(final))))
PY
done
