#!/usr/bin/python3
"""Prints the per-class table of the corpus README from a preprocessed
dataset's summary.json: stats.py SUMMARY_JSON CORPUS_DIR"""
import collections
import json
import os
import sys

summ = json.load(open(sys.argv[1]))
corpus = sys.argv[2]
names = {c["id"]: c["name"] for c in summ["tasks"]["traffic"]["classes"]}
rows = collections.OrderedDict()
for f in sorted(summ["files"], key=lambda f: (f["traffic"], f["path"])):
    r = rows.setdefault(f["traffic"], [0, 0, 0, 0])
    r[0] += 1
    r[1] += f["frames"]
    r[2] += f["kept"]
    r[3] += os.path.getsize(os.path.join(corpus, f["path"]))
print("| traffic class | sessions (files) | frames | packets kept by preprocessing | bytes |")
print("|---|---:|---:|---:|---:|")
tot = [0, 0, 0, 0]
for cls, r in rows.items():
    print("| %s (%d) | %d | %d | %d | %d |" % (names.get(cls, "?"), cls, *r))
    tot = [a + b for a, b in zip(tot, r)]
print("| **total** | %d | %d | %d | %d |" % tuple(tot))
sk = summ["skipped"]
print()
print("Frames dropped by the preprocessing rules: %s." %
      ", ".join("%s %d" % (k, v) for k, v in sk.items() if v) or "none")
