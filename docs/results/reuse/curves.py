"""Paired learning curves: the periodic evaluations of two run groups, seed by seed.

    python docs/results/reuse/curves.py RUNS_DIR PREFIX_A PREFIX_B [STEP ...]

For each seed and each evaluation step (``STEP``s, default: every one both runs have),
``lowest / mean`` teacher-forced whole-answer accuracy over the training lengths
(``eval_acc`` in ``metrics.jsonl``) of ``PREFIX_A-s<seed>`` and ``PREFIX_B-s<seed>``. Both
groups draw the same data stream per seed, so the columns compare like with like.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def evals(run: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["eval_acc"] for r in rows if "eval_acc" in r}


def cell(acc: "dict | None") -> str:
    if acc is None:
        return "-"
    values = list(acc.values())
    return f"{min(values):.2f} / {sum(values) / len(values):.2f}"


def main(runs: Path, a: str, b: str, steps: list[int]) -> None:
    seeds = [s for s in range(3) if (runs / f"{a}-s{s}").exists() and (runs / f"{b}-s{s}").exists()]
    curves = {(p, s): evals(runs / f"{p}-s{s}") for p in (a, b) for s in seeds}
    if not steps:
        steps = sorted(set.union(*(set(c) for c in curves.values())))
    print("| step | " + " | ".join(f"{p}-s{s}" for s in seeds for p in (a, b)) + " |")
    print("|---" * (1 + 2 * len(seeds)) + "|")
    for step in steps:
        print(f"| {step} | " + " | ".join(cell(curves[p, s].get(step)) for s in seeds for p in (a, b)) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4:]])
