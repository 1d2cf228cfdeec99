"""Where each 3-task run stopped: the curriculum's longest length and the final accuracy per task.

    python docs/results/reuse/multi/outcome.py /work/runs/multi6/multi-s0 /work/runs/multi6/multi-s1 ...

Reads ``eval.json`` (final evaluation, 512 sequences per task and length, whole-CoT
accuracy) and ``metrics.jsonl`` (the curriculum's ``max_length``; the first evaluation at
which each length range was reached) of each run; prints a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TASKS = ("parity", "copy", "polynomial")


def solved_up_to(rows: list[dict], task: str, level: float = 0.99) -> int:
    """The longest L such that every length 1..L is at >= level."""
    accs = {r["length"]: r["acc_cot"] for r in rows if r["task"] == task}
    top = 0
    for length in sorted(accs):
        if accs[length] < level:
            break
        top = length
    return top


def main(runs: list[Path]) -> None:
    print("| run | steps | curriculum reached (step) | " + " | ".join(f"{t}: solved 1-L (>= 0.99)" for t in TASKS)
          + " | polynomial acc at 4 / 8 / 12 |")
    print("|---" * (4 + len(TASKS)) + "|")
    for run in runs:
        ev = json.loads((run / "eval.json").read_text())
        reached: dict[int, int] = {}
        for line in (run / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            if "max_length" in row:
                reached.setdefault(row["max_length"], row["step"])
        acc = {r["length"]: r["acc_cot"] for r in ev["rows"] if r["task"] == "polynomial"}
        print(f"| {run.name} | {ev['step']} | " + ", ".join(f"{k} ({v})" for k, v in sorted(reached.items())) + " | "
              + " | ".join(f"1-{solved_up_to(ev['rows'], t)}" for t in TASKS) + " | "
              + " / ".join(f"{acc[k]:.2f}" for k in (4, 8, 12)) + " |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
