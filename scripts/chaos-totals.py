#!/usr/bin/env python3
"""Totals of kv-chaos runs: every DIR/*/summary.json under the directories given (or the run
directories themselves). Prints runs, operations (ok / fail / info), faults by kind, what the
proxies did, and anomalies; exits 1 if any run had an anomaly."""

import collections
import glob
import json
import os
import sys

summaries = []
for arg in sys.argv[1:]:
    direct = os.path.join(arg, "summary.json")
    summaries += [direct] if os.path.exists(direct) else sorted(glob.glob(os.path.join(arg, "*", "summary.json")))
runs = ops = ok = fail = info = anomalies = 0
faults, links, sizes = collections.Counter(), collections.Counter(), collections.Counter()
failing = []
for path in summaries:
    with open(path) as f:
        s = json.load(f)
    runs += 1
    sizes[s["nodes"]] += 1
    ops += s["operations"]
    ok += s["ok"]
    fail += s["fail"]
    info += s["info"]
    faults.update(s["faults"])
    links.update(s.get("links", {}))
    if s["anomalies"]:
        anomalies += len(s["anomalies"])
        failing.append(os.path.dirname(path))
by_size = ", ".join(f"{n} nodes x{c}" for n, c in sorted(sizes.items()))
print(f"runs: {runs} ({by_size})")
print(f"operations: {ops} (ok {ok}, fail {fail}, info {info})")
print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) + f" (total {sum(faults.values())})")
print("proxies: " + ", ".join(f"{k} {v}" for k, v in sorted(links.items())))
print(f"anomalies: {anomalies}" + (f" in {', '.join(failing)}" if failing else ""))
sys.exit(1 if anomalies else 0)
