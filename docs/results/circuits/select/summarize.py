"""The table of docs/results/circuits-discovered.md's section on ``--select`` from the JSON files here.

    python docs/results/circuits/select/summarize.py docs/results/circuits/select

Reads ``<model>-s<seed>-edges-<tag>.json`` (``comp circuit ... --swap --select ... --json``). Per
circuit: edges kept, the validation batch's re-adds and the moves, the trail (every circuit
the search passed through) and which of them the selection batch chose, the final-answer
and whole-CoT ratios on the held-out batch (reported), the discovery, validation and
selection batches, and whether the issue's goal is met on the held-out batch (ratios >= 0.95
and >= 0.90 with at most a quarter of the edges: ``keep/summarize.py``'s ``met``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("keep_summarize", Path(__file__).resolve().parents[1] / "keep" / "summarize.py")
keep_summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(keep_summarize)  # it puts docs/results/circuits on sys.path for its own loader
load, met, ratios = keep_summarize.load, keep_summarize.met, keep_summarize.ratios

NAME = re.compile(r"(?P<model>.+)-s(?P<seed>\d+)-(?P<level>edges)-(?P<tag>[a-z0-9-]+?)\.json")


def table(files: dict) -> list[str]:
    out = ["| model | seed | edges (share) | nodes | repaired | swap moves | trail: circuits (edges, first to last) "
           "| chosen: circuit (edges), selection margin | held out: answer / CoT ratio | held out: recovered "
           "| discovery batch: answer / CoT ratio | validation batch: answer / CoT accuracy | goal met | seconds |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (model, seed, _level, _tag), r in sorted(files.items()):
        a, c = ratios(r["model"], r["circuit"])
        fa, fc = ratios(r["fit"]["model"], r["fit"]["circuit"])
        va, vc = r["fit"]["validation"]["acc_answer"], r["fit"]["validation"]["acc_cot"]  # accuracies: the JSON has no full model there
        sel = r["selection"]
        k = sel["chosen"]
        out.append(f"| {model} | {seed} | {r['n_edges']}/{r['n_edges_total']} ({r['n_edges'] / r['n_edges_total']:.1%}) "
                   f"| {r['n_nodes']}/{r['n_nodes_total']} | {len(r['repaired'])} | {len(r['swap_moves'])} "
                   f"| {len(sel['sizes'])} ({sel['sizes'][0]} ... {sel['sizes'][-1]}) "
                   f"| {k + 1} ({sel['sizes'][k]}), {sel['margins'][k]:+.3f}{'' if sel['held'] else ' (none held)'} "
                   f"| {a:.3f} / {c:.3f} | {r['circuit']['recovered']:.3f} | {fa:.3f} / {fc:.3f} | {va:.3f} / {vc:.3f} "
                   f"| {'yes' if met(r) else 'no'} | {r['seconds']:.0f} |")
    return out


if __name__ == "__main__":
    print("\n".join(table(load(Path(sys.argv[1]), NAME, ("model", "seed", "level", "tag")))))
