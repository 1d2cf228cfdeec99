"""The tables of docs/results/circuits-discovered.md's section on ``--ref-n`` from the JSON files here.

    python docs/results/circuits/refn/summarize.py docs/results/circuits/refn

Reads ``<model>-s<seed>-edges-<tag>.json`` (``comp circuit ... --ref-n 256 --json``) and, beside
each, ``<model>-s<seed>-edges-<tag>-held32.json`` (``comp circuit score`` of that circuit on the
same held-out sequences with 32 reference sequences per length, ``--ref-n 0``), if there. Per
circuit: edges kept, the validation batch's re-adds and the moves, the final-answer and
whole-CoT ratios on the held-out batch (reported), the same circuit with the old 32-row mean,
the discovery batch and the validation batch, and whether the issue's goal is met on the
held-out batch (``keep/summarize.py``'s ``met``: ratios >= 0.95 and >= 0.90 with at most a
quarter of the edges).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("keep_summarize", Path(__file__).resolve().parents[1] / "keep" / "summarize.py")
keep_summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(keep_summarize)
met, ratios = keep_summarize.met, keep_summarize.ratios

NAME = re.compile(r"(?P<model>.+)-s(?P<seed>\d+)-edges-(?P<tag>[a-z0-9-]+?)\.json")


def row(r: dict, held32: "dict | None") -> str:
    a, c = ratios(r["model"], r["circuit"])
    fa, fc = ratios(r["fit"]["model"], r["fit"]["circuit"])
    val = r["fit"]["validation"]
    old = "-" if held32 is None else "{:.3f} / {:.3f}".format(*ratios(held32["model"], held32["circuit"]))
    extra = []
    if r.get("group_moves"):
        extra.append(f"{len(r['group_moves'])} group")
    if r.get("plateau_moves"):
        extra.append(f"{len(r['plateau_moves'])} plateau")
    moves = f"{len(r['swap_moves'])}" + (f" ({', '.join(extra)})" if extra else "")
    return (f"{r['n_edges']}/{r['n_edges_total']} ({r['n_edges'] / r['n_edges_total']:.1%}) | {r['n_nodes']}/{r['n_nodes_total']} "
            f"| {len(r['repaired'])} | {moves} | {a:.3f} / {c:.3f} | {r['circuit']['recovered']:.3f} | {old} "
            f"| {fa:.3f} / {fc:.3f} | {val['acc_answer']:.3f} / {val['acc_cot']:.3f} | {'yes' if met(r) else 'no'} "
            f"| {r['seconds']:.0f} |")


def main(folder: Path) -> None:
    print("| model | seed | search | edges (share) | nodes | repaired | moves | held out: answer / CoT ratio "
          "| held out: recovered | held out, 32 reference rows: answer / CoT ratio | discovery batch: answer / CoT ratio "
          "| validation batch: answer / CoT accuracy | goal met | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted(folder.glob("*.json")):
        m = NAME.fullmatch(path.name)
        if m is None or path.name.endswith("-held32.json"):
            continue
        r = json.loads(path.read_text())
        side = path.with_name(path.stem + "-held32.json")
        held32 = json.loads(side.read_text()) if side.exists() else None
        print(f"| {m['model']} | {m['seed']} | {m['tag']} | {row(r, held32)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
