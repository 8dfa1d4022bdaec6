#!/usr/bin/env python3
"""Summarise results.jsonl: per (candidate, body, scenario) the runs' p50/p99/max ranges and failures."""
import json, sys, collections
rows = collections.defaultdict(list)
for fn in sys.argv[1:] or ["results.jsonl"]:
    for l in open(fn):
        r = json.loads(l)
        rows[(r["label"], r["slow"], r["idle"], r["src"] + (f" +{r['noread']} slow-read" if r.get("noread") else ""))].append(r)
def rng(xs):
    xs = [x for x in xs if x is not None]
    if not xs: return "-"
    lo, hi = min(xs), max(xs)
    f = lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}"
    return f(lo) if lo == hi else f"{f(lo)}–{f(hi)}"
print("| candidate | body | hostile (slow+idle, src) | runs | p50 ms | p99 ms | max ms | failed/scrapes | hostile held (avg) | server threads | RSS max MB | fds max |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (label, s, i, src), rs in sorted(rows.items(), key=lambda kv: (kv[0][0].split("|")[1], kv[0][1], kv[0][3], kv[0][0])):
    name, body = label.split("|")
    fails = "; ".join(f"{r['fails']}/{r['scrapes']}" for r in rs)
    kinds = collections.Counter()
    for r in rs: kinds.update(r["fail_kinds"])
    if kinds: fails += " (" + ", ".join(f"{k} {v}" for k, v in kinds.items()) + ")"
    print(f"| {name} | {body} | {s}+{i} {src} | {len(rs)} | {rng([r['p50_ms'] for r in rs])} | {rng([r['p99_ms'] for r in rs])} | "
          f"{rng([r['max_ms'] for r in rs])} | {fails} | {rng([r['hostile_open_avg'] for r in rs])} | {rng([r.get('threads_max') for r in rs])} | "
          f"{rng([r.get('rss_kb_max', 0) / 1024 for r in rs])} | {rng([r.get('fds_max') for r in rs])} |")
