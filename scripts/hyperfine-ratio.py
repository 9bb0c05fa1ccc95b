#!/usr/bin/env python3
"""Print each command's median from a hyperfine --export-json file, and its ratio to a reference.

usage: hyperfine-ratio.py RESULTS.json REFERENCE_NAME
"""
import json
import sys

path, ref = sys.argv[1], sys.argv[2]
results = {x["command"]: x for x in json.load(open(path))["results"]}
base = results[ref]["median"]
print(f"{'command':<28} {'median':>11} {'vs ' + ref:>14}")
for name, x in results.items():
    print(f"{name:<28} {x['median'] * 1000:>9.2f}ms {x['median'] / base:>14.4f}")
