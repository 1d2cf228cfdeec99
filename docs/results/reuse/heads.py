"""Does a fine-tuned model keep its parent's heads? Head scores of parent and child, per seed.

    PYTHONPATH=src python docs/results/reuse/heads.py RUNS_DIR [LENGTHS] [PREFIX ...]

LENGTHS (``1-8`` by default, as in the tiny study; ``1-16`` for default-size models);
PREFIX: the run groups (default ``scratch ft-copy ft-poly``). For each run ``PREFIX-s<seed>``:
the best iteration, EoI-anchor and previous-token head (:func:`comp.circuits.heads.head_scores`)
on its task's sequences (64 per length, the evaluation seed) of the final model (of a run
still training: its last snapshot, said so) and, for a
fine-tuned run, of its parent's weights (its snapshot at step 0, on the child's task) and of
the parent on the parent's own task; then the iteration score of the parent's best
iteration head (on its own task) in the child (on the child's task): whether that head
keeps its role. Multi-task runs (``multi-s<seed>``): the same scores on each member task.
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
from comp.tasks.lengths import parse_lengths

N = 64
SCORES = ("iteration", "eoi_anchor", "prev_token")


def best(rows: list) -> str:
    """``iteration 0.93 (L1H0), eoi 0.88 (L0H1), prev 0.71 (L0H0)``."""
    parts = []
    for s in SCORES:
        top = max(rows, key=lambda r: getattr(r, s))
        parts.append(f"{s.split('_')[0]} {getattr(top, s):.2f} ({top.component})")
    return ", ".join(parts)


def scores(model, task, lengths: list[int]) -> list:
    return head_scores(model, analysis_groups(task, lengths, N, EVAL_SEED))


def main(runs: Path, lengths: list[int], prefixes: list[str]) -> None:
    print("| run | parent on its task | parent's weights on the child's task (step 0) | final model "
          "| parent's iteration head in the child |")
    print("|---|---|---|---|---|")
    for prefix in prefixes:
        for seed in range(3):
            path = runs / f"{prefix}-s{seed}"
            snaps = sorted((path / "snapshots").glob("step_*.safetensors"))
            if not (path / "model.safetensors").exists() and not snaps:
                continue
            run = load_run(path, weights=False)
            last = path / "model.safetensors" if (path / "model.safetensors").exists() else snaps[-1]
            load_model_tensors(run.model, load_tensors(last), str(last))
            final_rows = scores(run.model, run.task, lengths)
            name = path.name if last.name == "model.safetensors" else f"{path.name} ({last.stem}, unfinished)"
            parent = run.config.train.parent
            if not parent:
                print(f"| {name} | | (random init) | {best(final_rows)} | |")
                continue
            mother = load_run(parent["path"])
            own = scores(mother.model, mother.task, lengths)
            head = max(own, key=lambda r: r.iteration)
            kept = next(r for r in final_rows if r.component == head.component)
            load_model_tensors(run.model, load_tensors(snapshot_path(path, 0)), "step 0")
            start = best(scores(run.model, run.task, lengths))
            print(f"| {name} | {best(own)} | {start} | {best(final_rows)} | {head.component}: "
                  f"{head.iteration:.2f} -> {kept.iteration:.2f} |")
    for seed in range(3):
        path = runs / f"multi-s{seed}"
        if (path / "eval.json").exists():
            run = load_run(path)
            for member in run.task.components():
                print(f"| {path.name} on {member.name} | | | {best(scores(run.model, member, lengths))} | |")


if __name__ == "__main__":
    lengths = parse_lengths(sys.argv[2]) if len(sys.argv) > 2 else list(range(1, 9))
    main(Path(sys.argv[1]), lengths, sys.argv[3:] or ["scratch", "ft-copy", "ft-poly"])
