"""Tables of docs/results/dynamics.md from ``comp dynamics --json`` outputs.

    python docs/results/dynamics/summarize.py out/default-s0.json out/default-s1.json ...

Per run: the stage changes ``comp dynamics`` found (the iteration head's formation: the
first snapshot from which its best iteration score stays >= 0.5; the largest rise of
training and of longer-length accuracy between consecutive snapshots), given as
``step (after the previous snapshot)``, and the final head scores; then the mean and
standard deviation over the runs where a stage was found.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

STAGES = ("iteration_head", "train_acc", "long_acc")
SOLVED = 0.9  # also reported: the first snapshot from which train_acc stays >= this


def stays_from(steps: list[int], values: list, threshold: float) -> str:
    start = None
    for step, v in zip(steps, values):
        start = None if (v is None or v < threshold) else (step if start is None else start)
    return "not reached" if start is None else str(start)


def main(paths: list[Path]) -> None:
    found: dict[str, list[int]] = {s: [] for s in STAGES}
    print("| run | snapshots (last step) | iteration head forms | train acc jumps | train acc stays >= 0.9 from "
          "| long acc jumps | last: best iteration (head) | last train / long acc |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        d = json.loads(path.read_text())
        stages = {s["name"]: s for s in d["stages"]}
        cells = []
        for name in STAGES:
            s = stages.get(name)
            if s is None or s["step"] is None:
                cells.append("not found")
            else:
                found[name].append(s["step"])
                cells.append(f"{s['step']} (after {s['after']})")
        last = d["snapshots"][-1]["values"]
        long = last.get("long_acc")
        steps = [s["step"] for s in d["snapshots"]]
        solved = stays_from(steps, [s["values"].get("train_acc") for s in d["snapshots"]], SOLVED)
        cells.insert(2, solved)
        print(f"| {d['run']} | {len(steps)} ({steps[-1]}) | " + " | ".join(cells)
              + f" | {last.get('iteration', float('nan')):.2f} ({last.get('iteration_head')}) | "
              f"{last.get('train_acc', float('nan')):.2f} / {'-' if long is None else f'{long:.2f}'} |")
    parts = []
    for name in STAGES:
        v = found[name]
        if v:
            sd = f" ± {statistics.stdev(v):.0f}" if len(v) > 1 else ""
            parts.append(f"{name}: mean {statistics.mean(v):.0f}{sd} ({len(v)} of {len(paths)} runs)")
        else:
            parts.append(f"{name}: not found in any run")
    print("\n" + "; ".join(parts))


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
