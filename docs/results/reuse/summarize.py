"""Tables of docs/results/reuse.md from the study's run directories.

    python docs/results/reuse/summarize.py RUNS_DIR [PREFIX=LABEL ...]

Steps to 99%: the first periodic evaluation at which every training length is at >= 0.99
teacher-forced whole-answer accuracy (``eval_min`` in ``metrics.jsonl``; the runs' own
``eval_every`` and ``eval_n``); "> N" when no evaluation of the run reached it by its last
step N (the mean and spread are then over the seeds that did, and say how many). One row
per ``PREFIX=LABEL`` (runs ``PREFIX-s0``, ``-s1``, ``-s2``; default: the tiny study's groups).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

GROUPS = {"scratch": "from scratch", "ft-copy": "after copy (1000 steps)", "ft-poly": "after polynomial (1000 steps)"}
TARGET = 0.99


def steps_to_target(run: Path) -> "int | None":
    for line in (run / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("eval_min") is not None and row["eval_min"] >= TARGET:
            return row["step"]
    return None


def parent_acc(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text())
    parent = cfg["train"].get("parent") or {}
    if not parent:
        return ""
    rows = json.loads((Path(parent["path"]) / "eval.json").read_text())["rows"]
    return f"{parent['task']} parent at step {parent['step']}: min acc {min(r['acc_cot'] for r in rows):.2f}"


def last_step(run: Path) -> int:
    """The step of the run's last periodic evaluation."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return max(r["step"] for r in rows if r.get("eval_min") is not None)


def main(runs: Path, groups: dict[str, str]) -> None:
    print("| start | seed 0 | seed 1 | seed 2 | mean | spread (sd) | parents |")
    print("|---|---|---|---|---|---|---|")
    for prefix, label in groups.items():
        dirs = [runs / f"{prefix}-s{s}" for s in range(3)]
        dirs = [d for d in dirs if (d / "metrics.jsonl").exists()]
        steps = [steps_to_target(d) for d in dirs]
        done = [s for s in steps if s is not None]
        note = "" if len(done) == len(steps) else f" ({len(done)} of {len(steps)} seeds)"
        mean = f"{statistics.mean(done):.0f}{note}" if done else "-"
        sd = f"{statistics.stdev(done):.0f}" if len(done) > 1 else "-"
        parents = "; ".join(dict.fromkeys(p for p in (parent_acc(d) for d in dirs) if p))
        print(f"| {label} | " + " | ".join(str(s) if s is not None else f"> {last_step(d)}" for s, d in zip(steps, dirs)) + f" | {mean} | {sd} | {parents} |")


if __name__ == "__main__":
    pairs = [a.split("=", 1) for a in sys.argv[2:]]
    main(Path(sys.argv[1]), dict(pairs) if pairs else GROUPS)
