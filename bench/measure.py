#!/usr/bin/env python3
"""Run a command N times; print JSON with the best wall time, its CPU time and the peak RSS of the child.

Usage: measure.py [--runs N] [--label L] -- CMD ARGS...
The child runs under GNU time (/usr/bin/time, Debian package `time`): a small fork+exec parent, so the
reported peak RSS is the command's own (a Python parent would lend its own RSS to the child's maxrss).
"""
import json, os, subprocess, sys, time

def run_once(cmd):
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "VRESCUE-TIME %U %S %M"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    line = [l for l in p.stderr.splitlines() if l.startswith("VRESCUE-TIME ")][-1].split()
    return {"wall": round(wall, 4), "cpu": round(float(line[1]) + float(line[2]), 4), "rssKiB": int(line[3]),
            "rc": p.returncode, "stderr": p.stderr[-400:]}

def main():
    args = sys.argv[1:]
    runs, label = 3, None
    while args and args[0] != "--":
        if args[0] == "--runs":
            runs = int(args[1]); args = args[2:]
        elif args[0] == "--label":
            label = args[1]; args = args[2:]
        else:
            sys.exit(f"measure.py: unknown option {args[0]}")
    cmd = args[1:]
    best = None
    for _ in range(runs):
        r = run_once(cmd)
        if r["rc"] != 0:
            sys.exit(f"measure.py: {' '.join(cmd)} exited {r['rc']}: {r['stderr']}")
        if best is None or r["wall"] < best["wall"]:
            best = r
    best.pop("stderr")
    best["label"] = label or os.path.basename(cmd[0])
    best["runs"] = runs
    print(json.dumps(best))

main()
