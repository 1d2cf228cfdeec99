"""The choice of run.sh's rule, and its table: per model, the three specs' circuits (edges, the
selection batch's ratios), the one chosen (the smallest whose selection-batch ratios are answer
>= 0.96 and whole CoT >= 0.92; ties: the stricter spec; none: S1's), and the chosen circuit's
held-out ratios (reported, never used to choose) and whether the issue's goal is met there.

    python docs/results/circuits/refn/grid/choose.py docs/results/circuits/refn/grid
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECS = ("s1", "s2", "s3")  # strict to loose: logit/answer/cot 0.9/0.97/0.95, 0.85/0.97/0.93, 0.8/0.97/0.91
ANSWER, COT = 0.96, 0.92


def ratios(r: dict) -> tuple[float, float]:
    return r["circuit"]["acc_answer"] / r["model"]["acc_answer"], r["circuit"]["acc_cot"] / r["model"]["acc_cot"]


def choose(found: dict, selected: dict) -> str:
    passing = [k for k in SPECS if k in selected and ratios(selected[k])[0] >= ANSWER and ratios(selected[k])[1] >= COT]
    return min(passing, key=lambda k: (found[k]["n_edges"], SPECS.index(k))) if passing else "s1"


def main(folder: Path) -> None:
    models = sorted({p.name.rsplit("-s", 1)[0] for p in folder.glob("*-s1.json")})
    print("| model | S1: edges, selection answer / CoT | S2 | S3 | chosen | held out: answer / CoT ratio | goal met |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        found = {k: json.loads((folder / f"{m}-{k}.json").read_text()) for k in SPECS if (folder / f"{m}-{k}.json").exists()}
        selected = {k: json.loads((folder / f"{m}-{k}-selection.json").read_text())
                    for k in SPECS if (folder / f"{m}-{k}-selection.json").exists()}
        if set(selected) != set(SPECS):
            print(f"| {m} | (incomplete: {sorted(selected)}) |")
            continue
        cells = [f"{found[k]['n_edges']}, {ratios(selected[k])[0]:.3f} / {ratios(selected[k])[1]:.3f}" for k in SPECS]
        k = choose(found, selected)
        a, c = ratios(found[k])
        met = a >= 0.95 and c >= 0.90 and found[k]["n_edges"] <= found[k]["n_edges_total"] / 4
        print(f"| {m} | {' | '.join(cells)} | {k.upper()} ({found[k]['n_edges']}) | {a:.3f} / {c:.3f} | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
