#!/usr/bin/env python3
"""Counts of a campaign from its JSONL logs: cases per command and family, failures by class, peak RSS, slowest runs.

Usage: summarise.py [WORKDIR]   (default /tmp/vrescue-fuzz; a case run twice counts once, the last run wins)
"""
import collections, glob, json, os, sys

work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/vrescue-fuzz"
cases = {}
for fn in sorted(glob.glob(os.path.join(work, "log-*.jsonl"))):
    for line in open(fn):
        r = json.loads(line)
        if r["results"]:
            cases[(r["kind"], os.path.basename(fn), r["i"])] = r
per_command, per_family, failures, peak = collections.Counter(), collections.Counter(), collections.Counter(), collections.Counter()
slow = []
for key, r in cases.items():
    per_family[f"{r['kind']}/{r['family']}"] += 1
    for x in r["results"]:
        per_command[x["cmd"]] += 1
        peak[x["cmd"]] = max(peak[x["cmd"]], x["rss_kb"] // 1024)
        slow.append((x["secs"], x["cmd"], key[2], r["desc"][:70]))
        for f in x["fails"]:
            failures[f"{x['cmd']}:{f}"] += 1
    for e in r["extra"]:
        failures[f"case:{e}"] += 1
print(f"cases {len(cases)}")
print("per command:", dict(sorted(per_command.items())))
print("per family:", dict(sorted(per_family.items())))
print("failures:", dict(failures) or "none")
print("peak RSS MiB per command:", dict(sorted(peak.items())))
print("slowest runs:", sorted(slow, reverse=True)[:5])
