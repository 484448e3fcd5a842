#!/usr/bin/env python3
"""Markdown tables for docs/benchmarks.md from side_by_side.sh's results.

    tests/perf/tables.py OUT_DIR

For every (model, threads) the best run of each engine/compute type (the
shared machine only slows runs down, never speeds them up), and the ratios
whisper.cpp / wisp.
"""
import csv
import os
import sys

out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "results.tsv")), delimiter="\t"))
MEASURES = [("encoder_ms", "encoder ms/window"), ("decode_ms", "decode ms/token"),
            ("batch5_ms", "batch-5 ms/token"), ("prompt_ms", "prompt ms/token"),
            ("load_ms", "model load ms")]

best = {}
for r in rows:
    key = (r["model"], r["threads"], r["engine"], r["compute_type"])
    b = best.setdefault(key, dict(r))
    for m, _ in MEASURES + [("peak_rss_mb", "")]:
        try:
            if float(r[m]) < float(b[m]):
                b[m] = r[m]
                if m == "encoder_ms":  # the conditions of the best encoder run
                    b["load_before"], b["cpu_pct"] = r["load_before"], r["cpu_pct"]
        except (ValueError, KeyError, TypeError):  # load_ms: absent from older results
            pass
runs = {}
for r in rows:
    key = (r["model"], r["threads"], r["engine"], r["compute_type"])
    runs[key] = runs.get(key, 0) + 1

models = sorted({k[0] for k in best}, key=lambda n: ["tiny", "base", "small"].index(n.split("-")[1]) if n.split("-")[1] in ["tiny", "base", "small"] else 9)
print("| model | threads | engine (compute type) | encoder ms | decode ms/token | batch-5 ms/token | prompt ms/token | model load ms | peak RSS MB | runs | load, CPU% (best encoder run) |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for model in models:
    for t in ("2", "1"):
        wc = best.get((model, t, "whisper.cpp", "f16 file"))
        if not wc:
            continue
        cond = lambda b, k: f" | {runs[k]} | {b['load_before']}, {b['cpu_pct']}% |"
        wkey = (model, t, "whisper.cpp", "f16 file")
        num = lambda b, m: float(b.get(m) or "nan")
        print(f"| {model} | {t} | whisper.cpp | " + " | ".join("%.2f" % num(wc, m) for m, _ in MEASURES) + f" | {float(wc['peak_rss_mb']):.0f}" + cond(wc, wkey))
        for (mm, tt, eng, ct), b in sorted(best.items()):
            if mm != model or tt != t or eng != "wisp":
                continue
            cells = []
            for m, _ in MEASURES:
                ratio = num(wc, m) / num(b, m)
                cells.append("%.2f (**%.1fx**)" % (num(b, m), ratio))
            print(f"| {model} | {t} | wisp ({ct}) | " + " | ".join(cells) + f" | {float(b['peak_rss_mb']):.0f}" + cond(b, (mm, tt, eng, ct)))

e2e = os.path.join(out, "e2e.tsv")
if os.path.exists(e2e):
    print()
    print("| model | threads | engine (compute type) | wall s | peak RSS MB | speedup | load, CPU% |")
    print("|---|---|---|---:|---:|---:|---|")
    er = list(csv.DictReader(open(e2e), delimiter="\t"))
    eb = {}
    for r in er:
        key = (r["model"], r["threads"], r["engine"], r["compute_type"])
        if key not in eb or float(r["wall_s"]) < float(eb[key]["wall_s"]):
            eb[key] = r
    for (model, t, eng, ct), r in sorted(eb.items()):
        wc = eb.get((model, t, "whisper.cpp", "f16 file"))
        ratio = "" if eng == "whisper.cpp" or not wc else "**%.1fx**" % (float(wc["wall_s"]) / float(r["wall_s"]))
        print(f"| {model} | {t} | {eng} ({ct}) | {float(r['wall_s']):.1f} | {float(r['peak_rss_mb']):.0f} | {ratio} | {r['load_before']}, {r['cpu_pct']}% |")
