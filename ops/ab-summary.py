"""Summary of an interleaved A/B benchmark: for each backend and figure, the medians of
the two variants (each run in brackets) and their ratio.

Usage: ab-summary.py RESULTS VARIANT_KEY FIRST SECOND KIND:FIELD:LABEL [...]
RESULTS holds one JSON object per line with `kind`, `backend`, VARIANT_KEY and either
`result.FIELD` or, for FIELD `events_per_second`, `events` and `seconds`.
"""
import json
import statistics
import sys

results, key, first, second, *figures = sys.argv[1:]
rows = [json.loads(line) for line in open(results)]


def value(row, field):
    if field == "events_per_second":
        return row["events"] / row["seconds"]
    return row["result"][field]


print(f"| backend | figure | {first} | {second} | {second} / {first} |")
print("|---|---|---|---|---|")
for backend in ("sqlite", "postgres"):
    for figure in figures:
        kind, field, label = figure.split(":", 2)
        runs = {
            v: [value(r, field) for r in rows if r["kind"] == kind and r["backend"] == backend and r[key] == v]
            for v in (first, second)
        }
        if not all(runs.values()):
            continue
        med = {v: statistics.median(xs) for v, xs in runs.items()}
        shown = {v: f"{med[v]:,.0f} ({', '.join(f'{x:,.0f}' for x in runs[v])})" for v in runs}
        print(f"| {backend} | {label} | {shown[first]} | {shown[second]} | {med[second] / med[first]:.2f} |")
