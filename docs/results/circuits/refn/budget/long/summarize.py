"""The tables of circuits-discovered.md's section on lengths 64 and 128 (final weights), from the JSON here.

    python docs/results/circuits/refn/budget/long/summarize.py

Table 1: each fixed seed's 1-16 circuit (``budget/MODEL.json``) scored on the test batch (data
seed 12401) at 1-16, 64 and 128 (``budget/MODEL-test12401.json``, ``-at64-``, ``-at128-``).
Table 2: the circuit found again at 64 (and 128 where run, ``long/MODEL-L64.json``) against the
1-16 one (``comp circuit diff``). Table 3: the 1-16 circuit plus the 64 circuit's extra edges
(``long/union.py``) scored the same way. Cells: final answer / whole CoT / recovered logit
difference of the circuit alone (the full model is right on every sequence at 64 and 128, and on all but
one or two at 1-16)."""
import json
from pathlib import Path

here = Path(__file__).resolve().parent
budget = here.parent
MODELS = ["fixed-s0", "fixed-s1", "fixed-s2"]


def cell(path: Path) -> str:
    if not path.exists():
        return "-"
    c = json.loads(path.read_text())["circuit"]
    return f"{c['acc_answer']:.3f} / {c['acc_cot']:.3f} / {c['recovered']:.3f}"


def main() -> None:
    print("| model | 1-16 circuit: edges | at 1-16 | at 64 | at 128 |\n|---|---|---|---|---|")
    for m in MODELS:
        n = json.loads((budget / f"{m}.json").read_text())["n_edges"]
        print(f"| {m} | {n} | {cell(budget / f'{m}-test12401.json')} | {cell(budget / f'{m}-at64-test12401.json')} "
              f"| {cell(budget / f'{m}-at128-test12401.json')} |")
    print("\n| model | found at | edges | held out there | nodes: Jaccard with 1-16 | edges: Jaccard | only in 1-16 | only here |")
    print("|---|---|---|---|---|---|---|---|")
    for m in MODELS:
        for length in (64, 128):
            found, diff = here / f"{m}-L{length}.json", here / f"{m}-diff-1-16-vs-{length}.json"
            if not found.exists():
                continue
            r, d = json.loads(found.read_text()), json.loads(diff.read_text())
            c = r["circuit"]
            print(f"| {m} | {length} | {r['n_edges']} | {c['acc_answer']:.3f} / {c['acc_cot']:.3f} / {c['recovered']:.3f} "
                  f"| {d['node_jaccard']:.2f} | {d['edge_jaccard']:.2f} | {', '.join(d['only_a_edges']) or '-'} "
                  f"| {', '.join(d['only_b_edges']) or '-'} |")
    print("\n| model | union: edges (added) | at 1-16 | at 64 | at 128 |\n|---|---|---|---|---|")
    for m in MODELS:
        for u in sorted(here.glob(f"{m}-union*.json")):
            if "-at" in u.name:
                continue
            r = json.loads(u.read_text())
            found = r.get("added_from_lengths", "64")
            at = {length: cell(here / f"{u.stem}-at{length}-test12401.json") for length in ("1-16", "64", "128")}
            print(f"| {m} | 1-16 + found at {found}: {r['n_edges']} ({', '.join(r['added_from_L64'])}) | {at['1-16']} "
                  f"| {at['64']} | {at['128']} |")


if __name__ == "__main__":
    main()
