"""Seed-by-seed table (markdown) of one or more ``comp lengthgen`` results: validation worst row,
each test length, the continued run's worst validation row where the study continued runs
(``--extend``), and the calibrated factor where the study calibrated.

    python docs/results/lengthgen/seeds_table.py RESULTS.json [RESULTS.json ...] [--metric acc_generate]

Rows of several studies of the same task and encoding (e.g. seeds 10-14 and 15-19 run as two
studies) are pooled; the last line is the mean ± sd and the worst seed per column.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--metric", default="acc_generate")
    args = parser.parse_args()
    test: dict[int, dict[int, float]] = {}
    val: dict[int, float] = {}
    factor: dict[int, float] = {}
    after: dict[int, str] = {}  # seed -> the continued run's worst validation row (--extend)
    for path in args.results:
        r = json.loads(path.read_text())
        for row in r["rows"]:
            test.setdefault(row["seed"], {})[row["length"]] = row[args.metric]
            factor[row["seed"]] = row.get("sharpen", 1.0)
        for row in r.get("val_rows", []):
            val[row["seed"]] = min(val.get(row["seed"], 1.0), row[args.metric])
        for job, e in r.get("extension", {}).items():  # job: <task>-<pe>-s<seed>
            cell = "" if e["worst_after"] is None else (
                f"{e['worst_after']:.4f}" + ("" if e["kept"].startswith(f"{job}-ext") else " (not kept)"))
            for k, a in enumerate(e.get("restarts", []), 1):  # --restarts: attempts from new initializations
                mark = " (kept)" if e["kept"] == a["kept"] else ""
                cell += f"{'; ' if cell else ''}restart {k}: {a['worst']:.4f}{mark}"
            after[int(job.rsplit("-s", 1)[1])] = cell
    lengths = sorted({n for rows in test.values() for n in rows})
    calibrated = any(f != 1.0 for f in factor.values()) or any("calibration" in json.loads(p.read_text())
                                                                for p in args.results)
    extended = bool(after)
    restarted = any("restart" in cell for cell in after.values())
    head = (["seed", "validation: worst row"] + ([("after --extend; restarts" if restarted else "after --extend")] if extended else [])
            + (["factor"] if calibrated else []) + [str(n) for n in lengths])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for seed in sorted(test):
        cells = ([str(seed), f"{val[seed]:.4f}" if seed in val else ""] + ([after.get(seed, "")] if extended else [])
                 + ([f"{factor[seed]:g}"] if calibrated else []))
        cells += [f"{test[seed].get(n, float('nan')):.4f}" for n in lengths]
        print("| " + " | ".join(cells) + " |")
    summary = ["mean ± sd (worst)", f"{statistics.fmean(val.values()):.4f} ({min(val.values()):.4f})" if val else ""]
    summary += ([""] if extended else []) + ([""] if calibrated else [])
    for n in lengths:
        xs = [test[s][n] for s in test if n in test[s]]
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        summary.append(f"{statistics.fmean(xs):.3f} ± {sd:.3f} ({min(xs):.4f})")
    print("| " + " | ".join(summary) + " |")


if __name__ == "__main__":
    main()
