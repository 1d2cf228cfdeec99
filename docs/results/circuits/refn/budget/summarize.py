"""The table of docs/results/circuits-discovered.md's section on ``--budget 0.25`` from the JSON files here.

    python docs/results/circuits/refn/budget/summarize.py docs/results/circuits/refn/budget

Reads ``<model>.json`` (``comp circuit ... --ref-n 256 --budget 0.25 --json``, run.sh) and, beside
each, ``<model>-test12401.json`` (``comp circuit score`` of that circuit on the fresh test batch,
data seed 12401, 256 reference sequences per length), if there. Per circuit: edges kept, the
edges the budget removed and the smallest margin after them, the discovery and validation
batches' ratios (the validation batch: accuracies; the model is right on nearly every sequence), the held-out batch's (reported by comp circuit) and the test batch's, and
whether the issue's goal is met on each (``keep/summarize.py``'s ``met``: final-answer ratio
>= 0.95 and whole-CoT ratio >= 0.90, with at most a quarter of the edges).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("keep_summarize", Path(__file__).resolve().parents[2] / "keep" / "summarize.py")
keep_summarize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(keep_summarize)
met, ratios = keep_summarize.met, keep_summarize.ratios


def pair(scores: dict) -> str:
    return "{:.3f} / {:.3f}".format(*ratios(scores["model"], scores["circuit"]))


def main(folder: Path) -> None:
    print("| model | edges (share) | budget trims (smallest margin after) | discovery: answer / CoT ratio "
          "| validation: answer / CoT accuracy | held out: answer / CoT ratio | test 12401: answer / CoT ratio "
          "| goal met: held out, test | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(folder.glob("*.json")):
        if "-test" in path.name:
            continue
        r = json.loads(path.read_text())
        fit = r["fit"]
        val = fit["validation"]
        trims = r.get("budget_trims", [])
        trimmed = f"{len(trims)} ({min(t['margin'] for t in trims):+.4f})" if trims else "0"
        side = path.with_name(path.stem + "-test12401.json")
        test = json.loads(side.read_text()) if side.exists() else None
        test_text = "-" if test is None else pair(test)
        test_met = "-" if test is None else ("yes" if met({**test, "n_edges": r["n_edges"], "n_edges_total": r["n_edges_total"]}) else "no")
        print(f"| {path.stem} | {r['n_edges']}/{r['n_edges_total']} ({r['n_edges'] / r['n_edges_total']:.1%}) | {trimmed} "
              f"| {pair({'model': fit['model'], 'circuit': fit['circuit']})} | {val['acc_answer']:.3f} / {val['acc_cot']:.3f} | {pair(r)} | {test_text} "
              f"| {'yes' if met(r) else 'no'}, {test_met} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
