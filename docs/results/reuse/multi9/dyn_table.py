"""When each member task's iteration head forms in the 3-task runs, from ``dynamics.sh``'s JSON:

    python docs/results/reuse/multi9/dyn_table.py docs/results/reuse/multi9/dynamics

One row per (seed, member): the step from which the best iteration score stays >= 0.5 (comp
dynamics' ``iteration_head`` stage) and the head then, the final best head and its score,
the first snapshot where the member is at >= 0.99 on every length 1-16 (32 sequences each),
and the snapshots at which the best head changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    d = json.loads(path.read_text())
    snaps = d["snapshots"]
    stage = next(s for s in d["stages"] if s["name"] == "iteration_head")
    at = next((s for s in snaps if s["step"] == stage["step"]), None)
    solved = next((s["step"] for s in snaps if (s["values"].get("train_acc") or 0) >= 0.99), None)
    changes, last = [], None
    for s in snaps:
        head = s["values"]["iteration_head"]
        if s["values"]["iteration"] >= 0.3 and head != last:
            changes.append(f"{head}@{s['step']}")
            last = head
    final = snaps[-1]["values"]
    seed = path.stem.split("-")[0]
    formed = f"{stage['step']} ({at['values']['iteration_head']} {at['values']['iteration']:.2f})" if at else "not formed"
    return (f"| {seed} | {d['member']} | {formed} | {final['iteration_head']} {final['iteration']:.2f} | "
            f"{solved if solved is not None else 'not reached'} | {', '.join(changes)} |")


def main(directory: Path) -> None:
    print("| seed | task | iteration head formed at step (head, score) | final best head | first snapshot at >= 0.99 on 1-16 "
          "| best head (score >= 0.3) over the snapshots, from step |")
    print("|---|---|---|---|---|---|")
    for path in sorted(directory.glob("s*-*.json")):
        print(row(path))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
