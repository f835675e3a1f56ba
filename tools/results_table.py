"""The README's table of example results, from the JSON files the examples write.

Usage::

    python tools/results_table.py [DIR]     (default examples/out)

Prints one Markdown row per JSON file (full runs only; --quick runs are
skipped): task, paradigm, cell, metric, baseline, rnncore's result,
training time, the published figure where there is one (shown once for
consecutive rows that share it), and the command.
"""

from __future__ import annotations

import json
import pathlib
import sys

ORDER = ["digits", "sentiment", "pos_tagging", "captioning", "g2p", "shakespeare_lm", "authorship",
         "sunspots", "adding", "copying", "temporal_order", "torch_parity"]


def number(value) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def sort_key(row: dict) -> tuple:
    script = row["command"].split()[1].rsplit("/", 1)[-1].removesuffix(".py")
    return (ORDER.index(script) if script in ORDER else len(ORDER), script, row["name"])


def main() -> int:
    directory = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out")
    rows = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    rows = sorted((r for r in rows if not r["quick"]), key=sort_key)
    if not rows:
        print(f"no full-run results in {directory}", file=sys.stderr)
        return 1
    print("| task | paradigm | cell | metric | baseline | rnncore | time | published | command |")
    print("|---|---|---|---|---|---|---:|---|---|")
    previous = None
    for r in rows:
        published = r["published"] or "-"
        published, previous = ("" if published == previous else published), published
        baseline = number(r["baseline"])
        if r["baseline_name"] and r["baseline"] is not None:
            baseline += f" ({r['baseline_name']})"
        print(f"| {r['task']} | {r['paradigm']} | {r['cell']} | {r['metric']} | {baseline} | "
              f"**{number(r['result'])}** | {r['seconds']:.0f} s | {published} | `{r['command']}` |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
