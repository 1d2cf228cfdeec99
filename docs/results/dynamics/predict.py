"""Tables of docs/results/dynamics.md: do training-length measures predict 4x generalization?

    python docs/results/dynamics/predict.py [--at 128] FIT_REGEX margin-a.json [margin-b.json ...]

Reads the rows ``margin.py`` wrote. A model *generalizes* if its whole-CoT accuracy at
length 64 (4x; ``--at 128``: 8x) is >= ``GOOD``. For each measure: a threshold is chosen on the rows whose
``run`` matches ``FIT_REGEX`` (the midpoint that classifies the most of them right as
"measure >= threshold: generalizes"; ties: the widest gap), then tested on the other rows.
Also the Spearman rank correlation of each measure with the accuracy at 64, over all rows.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

GOOD = 0.9
MEASURES = ("iteration", "iteration_frac", "head_margin_mean", "head_margin_q05", "head_logodds_mean",
            "head_logodds_q05", "any_margin_mean", "any_margin_q05", "any_logodds_mean", "any_logodds_q05")


def label(row: dict) -> str:
    """``a/parity-t5+coupling-s3@500``: the run (and its folder), and the step of a checkpoint or snapshot."""
    path = Path(row["run"])
    if path.suffix == ".safetensors":  # a snapshot: RUN/snapshots/step_*.safetensors
        path = path.parent.parent
    step = f"@{row['step']}" if row.get("step") is not None else ""
    return f"{path.parent.name}/{path.name}{step}" if path.parent.name else f"{path.name}{step}"


OUTCOME = "acc_L64"  # the accuracy that defines "generalizes" (``--at``)


def threshold(rows: list[dict], measure: str) -> tuple[float, int]:
    """The cut with the most right answers on ``rows`` (ties: the largest gap around it)."""
    values = sorted({r[measure] for r in rows})
    cuts = [values[0] - 1] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1]
    gaps = [1.0] + [b - a for a, b in zip(values, values[1:])] + [1.0]

    def right(cut: float) -> int:
        return sum((r[measure] >= cut) == (r[OUTCOME] >= GOOD) for r in rows)

    best = max(range(len(cuts)), key=lambda i: (right(cuts[i]), gaps[i]))
    return cuts[best], right(cuts[best])


def spearman(xs: list[float], ys: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx = sum((a - mx) ** 2 for a in rx) ** 0.5
    sy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (sx * sy) if sx and sy else float("nan")


def main(fit: str, paths: list[Path]) -> None:
    rows = [r for p in paths for r in json.loads(p.read_text())]
    print("| model | fit/test | best iteration head | iteration | any-head log-odds q05 | any-head margin q05 "
          "| head log-odds mean | acc 16 | acc 64 | acc 128 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r[OUTCOME]):
        part = "fit" if re.search(fit, r["run"]) else "test"
        print(f"| {label(r)} | {part} | {r['head']} | {r['iteration']:.2f} | {r['any_logodds_q05']:.1f} | "
              f"{r['any_margin_q05']:.1f} | {r['head_logodds_mean']:.1f} | {r['acc_L16']:.2f} | "
              f"{r['acc_L64']:.2f} | {r['acc_L128']:.2f} |")
    fit_rows = [r for r in rows if re.search(fit, r["run"])]
    test_rows = [r for r in rows if not re.search(fit, r["run"])]
    good = sum(r[OUTCOME] >= GOOD for r in rows)
    print(f"\n{len(rows)} models, {good} generalize ({OUTCOME} >= {GOOD}); threshold fit on {len(fit_rows)} "
          f"(`{fit}`), tested on {len(test_rows)}\n")
    print(f"| measure | Spearman with {OUTCOME} (all) | threshold (fit) | right on fit | right on test |")
    print("|---|---|---|---|---|")
    for m in MEASURES:
        rho = spearman([r[m] for r in rows], [r[OUTCOME] for r in rows])
        cut, right = threshold(fit_rows, m) if fit_rows else (float("nan"), 0)
        test = sum((r[m] >= cut) == (r[OUTCOME] >= GOOD) for r in test_rows)
        print(f"| {m} | {rho:.2f} | {cut:.3g} | {right}/{len(fit_rows)} | {test}/{len(test_rows)} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--at"]:
        OUTCOME, args = f"acc_L{int(args[1])}", args[2:]
    main(args[0], [Path(p) for p in args[1:]])
