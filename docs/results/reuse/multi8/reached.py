"""Where each 3-task run with the per-task curriculum stopped: when each member task reached each
of its length ranges, and the final accuracy per task.

    python docs/results/reuse/multi8/reached.py /work/runs/multi8/multi-s0 /work/runs/multi8/multi-s1 ...

Reads ``metrics.jsonl`` (``max_length_by_task`` and ``eval_min_by_task`` of each evaluation) and,
when the run has finished, ``eval.json`` (512 sequences per task and length, whole-CoT accuracy);
prints a markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "multi"))
from outcome import TASKS, solved_up_to  # noqa: E402  (session 6's table: the same "solved 1-L" rule)


def main(runs: list[Path]) -> None:
    print("| run | steps (stop) | " + " | ".join(f"{t}: range reached at step" for t in TASKS) + " | "
          + " | ".join(f"{t}: solved 1-L (>= 0.99)" for t in TASKS) + " |")
    print("|---" * (2 + 2 * len(TASKS)) + "|")
    for run in runs:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in rows if "max_length_by_task" in r and "eval_min_by_task" in r]
        reached = {t: {} for t in TASKS}
        for r in rows:
            for t, hi in r.get("max_length_by_task", {}).items():
                reached[t].setdefault(hi, r["step"])
        done = (run / "eval.json").exists()
        ev = json.loads((run / "eval.json").read_text()) if done else None
        steps = f"{ev['step']} ({ev.get('stop_reason', '')})" if done else f"{evals[-1]['step']} (running)"
        solved = [f"1-{solved_up_to(ev['rows'], t)}" if done else "-" for t in TASKS]
        print(f"| {run.name} | {steps} | "
              + " | ".join(", ".join(f"{k} ({v})" for k, v in sorted(reached[t].items())) for t in TASKS) + " | "
              + " | ".join(solved) + " |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
