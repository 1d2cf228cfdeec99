"""Does a fine-tuned model keep its parent's heads? Head scores of parent and child, per seed.

    PYTHONPATH=src python docs/results/reuse/heads.py RUNS_DIR

For each parity fine-tune ``ft-<parent>-s<seed>`` and each from-scratch run: the best
iteration, EoI-anchor and previous-token head (:func:`comp.circuits.heads.head_scores`)
on parity sequences of lengths 1-8, 64 each, of the parent's weights (the child's
snapshot at step 0 is the parent's model) and of the final model. Multi-task runs
(``multi-s<seed>``): the same scores on each member task's sequences.
"""

from __future__ import annotations

import sys
from pathlib import Path

from comp.circuits.data import analysis_groups
from comp.circuits.heads import head_scores
from comp.config import EVAL_SEED
from comp.io import load_tensors
from comp.runs.files import snapshot_path
from comp.runs.load import load_run
from comp.runs.state import load_model_tensors

LENGTHS = list(range(1, 9))
N = 64
SCORES = ("iteration", "eoi_anchor", "prev_token")


def best(rows: list) -> str:
    """``iteration 0.93 (L1H0), eoi 0.88 (L0H1), prev 0.71 (L0H0)``."""
    parts = []
    for s in SCORES:
        top = max(rows, key=lambda r: getattr(r, s))
        parts.append(f"{s.split('_')[0]} {getattr(top, s):.2f} ({top.component})")
    return ", ".join(parts)


def scores(model, task) -> list:
    return head_scores(model, analysis_groups(task, LENGTHS, N, EVAL_SEED))


def main(runs: Path) -> None:
    print("| run | parent's weights (step 0) | final model |")
    print("|---|---|---|")
    for prefix in ("scratch", "ft-copy", "ft-poly"):
        for seed in range(3):
            path = runs / f"{prefix}-s{seed}"
            if not (path / "eval.json").exists():
                continue
            run = load_run(path)
            final = best(scores(run.model, run.task))
            load_model_tensors(run.model, load_tensors(snapshot_path(path, 0)), "step 0")
            start = best(scores(run.model, run.task)) if prefix != "scratch" else "(random init)"
            print(f"| {path.name} | {start} | {final} |")
    for seed in range(3):
        path = runs / f"multi-s{seed}"
        if (path / "eval.json").exists():
            run = load_run(path)
            for member in run.task.components():
                print(f"| {path.name} on {member.name} | | {best(scores(run.model, member))} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
