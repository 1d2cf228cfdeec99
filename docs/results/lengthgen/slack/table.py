"""The table of slack.md: steps to fit and accuracy by length of every slack run, and means over seeds.

Reads each run's ``eval.json`` (steps, stop reason) and the ``comp eval`` JSON of lengths 1-64
written beside the runs, writes ``results.json`` (one row per run, accuracy at every length)
and prints the markdown tables; with ``--use``/``--bycount``, also the tables of what the
models compute (the JSON files of slack_use.py and by_count.py), means over seeds.

    python docs/results/lengthgen/slack/table.py RUNS_DIR EVAL_DIR --out docs/results/lengthgen/slack/results.json \
        --use docs/results/lengthgen/slack/use --bycount docs/results/lengthgen/slack/by_count
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

SLACKS = ("0", "1", "2", "4", "8", "16", "L")
RANGES = {"1-16": (1, 16), "17-32": (17, 32), "33-64": (33, 64)}
AT = (16, 17, 18, 20, 24, 32, 64)


def run_row(run_dir: Path, eval_dir: Path) -> dict:
    train = json.loads((run_dir / "eval.json").read_text())
    acc = {r["length"]: r["acc_generate"] for r in json.loads((eval_dir / f"{run_dir.name}.json").read_text())["rows"]}
    slack, seed = re.fullmatch(r"nocot-slack(\w+)-s(\d+)", run_dir.name).groups()
    fit = train["stop_reason"] == "target"
    return {"run": run_dir.name, "slack": slack, "seed": int(seed), "steps": train["step"], "fit": fit,
            "train_min_acc": min(r["acc_answer"] for r in train["rows"]),  # final eval: 512 per length 1-16
            **{f"acc_{k}": statistics.mean(acc[n] for n in range(lo, hi + 1)) for k, (lo, hi) in RANGES.items()},
            **{f"acc_L{n}": acc[n] for n in AT},
            "max_len_99": max([n for n in acc if all(acc[m] >= 0.99 for m in range(1, n + 1))], default=0),
            "acc_by_length": [acc[n] for n in sorted(acc)]}


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} [{min(values):.3f}]"


MECHANISM = {  # column -> slack_use.py summary key (means over the training lengths 8, 12, 16)
    "L0 ones": "L0_ones", "L0 zeros": "L0_zeros", "L0 slack": "L0_slack", "L1 slack": "L1_slack",
    "patch slack": "patch_slack", "patch EoI": "patch_eoi", "patch inputs": "patch_input",
    "ones @q": "probe_ones_q_pre1", "s_L @q": "probe_s_L_q_pre1", "ones @slack": "probe_ones_slack_pre1",
    "s_L @slack": "probe_s_L_slack_out", "s_j @slack": "probe_s_j_slack_out",
}


def mean_cell(values: list) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.mean(values):.2f}" if values else "-"


def print_mechanism(use_dir: Path, bycount_dir: Path) -> None:
    from slack_use import summary_row  # this directory

    use = [summary_row(json.loads(f.read_text())) for f in sorted(use_dir.glob("*.json"))]
    counts = [json.loads(f.read_text()) for f in sorted(bycount_dir.glob("*.json"))]
    print("\n| slack | runs | counts learned (0..c) | rule agrees, 17-64 | acc 17-64 | rule's acc 17-64 |\n|---|---|---|---|---|---|")
    for slack in SLACKS:
        group = [r for r in counts if str(r["slack"]) == slack]
        if group:
            test = [list(r["by_length_test"].values()) for r in group]
            cells = [", ".join(str(r["learned_up_to"]) for r in group),
                     ", ".join(f"{r['rule_agrees_17_64']:.3f}" for r in group),
                     ", ".join(f"{statistics.mean(v['acc'] for v in t):.3f}" for t in test),
                     ", ".join(f"{statistics.mean(v['rule_acc'] for v in t):.3f}" for t in test)]
            print(f"| {slack} | {len(group)} | " + " | ".join(cells) + " |")
    print("\n| slack | runs | " + " | ".join(MECHANISM) + " |\n|" + "---|" * (len(MECHANISM) + 2))
    for slack in SLACKS:
        group = [r for r in use if str(r["slack"]) == slack]
        if group:
            print(f"| {slack} | {len(group)} | " + " | ".join(mean_cell([r.get(k) for r in group]) for k in MECHANISM.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("evals")
    parser.add_argument("--out", default="")
    parser.add_argument("--use", default="", help="directory of slack_use.py JSON files")
    parser.add_argument("--bycount", default="", help="directory of by_count.py JSON files")
    args = parser.parse_args()
    rows = [run_row(d, Path(args.evals)) for d in sorted(Path(args.runs).glob("nocot-slack*"))
            if (Path(args.evals) / f"{d.name}.json").exists()]
    rows.sort(key=lambda r: (SLACKS.index(r["slack"]), r["seed"]))
    if args.out:
        Path(args.out).write_text(json.dumps({"n": 256, "lengths": "1-64", "rows": rows}, indent=1) + "\n")
    cols = ["steps", "train_min_acc", "acc_1-16", "acc_L16", "acc_L17", "acc_L18", "acc_L20", "acc_17-32",
            "acc_33-64", "max_len_99"]
    print("| slack | seed | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 2))
    for r in rows:
        cells = [f"{r[c]}" if c in ("steps", "max_len_99") else f"{r[c]:.3f}" for c in cols]
        cells[0] += "" if r["fit"] else " (cap)"
        print(f"| {r['slack']} | {r['seed']} | " + " | ".join(cells) + " |")
    print("\n| slack | runs fit | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 2))
    for slack in SLACKS:
        group = [r for r in rows if r["slack"] == slack]
        if group:
            cells = [f"{statistics.mean(r[c] for r in group):.0f}" if c in ("steps", "max_len_99")
                     else fmt([r[c] for r in group]) for c in cols]
            print(f"| {slack} | {sum(r['fit'] for r in group)}/{len(group)} | " + " | ".join(cells) + " |")
    if args.use and args.bycount:
        print_mechanism(Path(args.use), Path(args.bycount))


if __name__ == "__main__":
    main()
