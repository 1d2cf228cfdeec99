"""The cross-task patching table of docs/results/reuse.md from ``comp crosstask --json`` outputs.

    python docs/results/reuse/crosstask.py crosstask-s0.json crosstask-s1.json crosstask-s2.json

``comp crosstask --json`` writes ``{"run", "results": [one per pair], ...}``. One row per component, one column per (source -> target) pair and seed, then the mean:
the share of the task-token effect the component carries alone (``moved``).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(paths: list[Path]) -> None:
    runs = [json.loads(p.read_text()) for p in paths]
    runs = [r["results"] if isinstance(r, dict) else r for r in runs]  # {"run", "results", ...}; older files: the list
    pairs = [f"{r['source']}->{r['target']}" for r in runs[0]]
    header = [f"{pair} s{i}" for pair in pairs for i in range(len(runs))] + [f"{pair} mean" for pair in pairs]
    print("| component | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for comp in runs[0][0]["moved"]:
        cells, means = [], []
        for k in range(len(pairs)):
            values = [run[k]["moved"][comp] for run in runs]
            cells += [f"{v:.2f}" for v in values]
            means.append(f"{statistics.mean(values):.2f}")
        print(f"| {comp} | " + " | ".join(cells + means) + " |")
    for k, pair in enumerate(pairs):
        changed = [run[k]["changed"] for run in runs]
        print(f"\n{pair}: the task token changes {', '.join(f'{c:.0%}' for c in changed)} of the answer predictions")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
