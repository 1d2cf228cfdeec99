"""The multi-task tables of docs/results/reuse.md from the files analyze.sh writes.

    python docs/results/reuse/multi/summarize.py docs/results/reuse/multi/s0 docs/results/reuse/multi/s1 ...

Each directory holds one seed's ``circuit-<task>.json`` (``comp circuit --member``),
``heads-<task>.json`` (``comp heads --member``), ``shared.json`` (``comp circuit shared``)
and ``crosstask.json`` (``comp crosstask``). Prints markdown: circuit sizes and
faithfulness per task, which tasks keep each component (per seed), the shared / specific
counts (per seed, mean and sd), pairwise overlaps, the iteration heads of each task and
whether parity's and polynomial's are one head, and the cross-task patching means.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

TASKS = ("parity", "copy", "polynomial")
LETTER = {"parity": "P", "copy": "C", "polynomial": "Y"}
TOP = 2  # iteration heads listed per task


def load(d: Path) -> dict:
    global TASKS, HEADS
    TASKS = tuple(t for t in ("parity", "copy", "polynomial") if (d / f"circuit-{t}.json").exists())
    HEADS = tuple(t for t in ("parity", "copy", "polynomial") if (d / f"heads-{t}.json").exists())
    return {
        "circuits": {t: json.loads((d / f"circuit-{t}.json").read_text()) for t in TASKS},
        "heads": {t: json.loads((d / f"heads-{t}.json").read_text()) for t in HEADS},
        "shared": json.loads((d / "shared.json").read_text()),
        "crosstask": json.loads((d / "crosstask.json").read_text()) if (d / "crosstask.json").exists() else None,
    }


def ms(values: list[float], fmt: str = "{:.2f}") -> str:
    if len(values) < 2:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def iteration_heads(heads: dict) -> list[tuple[str, float]]:
    rows = sorted((r for r in heads["rows"] if r["kind"] == "head"), key=lambda r: -r["iteration"])
    return [(r["component"], r["iteration"]) for r in rows[:TOP]]


def main(dirs: list[Path]) -> None:
    seeds = [load(d) for d in dirs]
    names = [d.parent.name if d.name in ("short", "long", "long12") else d.name for d in dirs]

    print("Circuit per task (nodes, exact, mean ablation, keep logit 0.95; held-out batch):\n")
    rows = []
    for name, s in zip(names, seeds):
        for t in TASKS:
            c, sizes = s["circuits"][t], s["shared"]["sizes"][t]
            rows.append([name, t, f"{c['model']['acc_answer']:.3f}", f"{c['circuit']['recovered']:.3f}",
                         f"{c['circuit']['acc_answer']:.3f}", f"{c['knocked_out']['acc_answer']:.3f}",
                         sizes["components"], sizes["nodes"], f"{c['n_nodes_total'] - 1}"])
    table(["seed", "task", "model acc", "circuit recovered", "circuit acc", "knocked-out acc", "components", "nodes",
           "of nodes"], rows)

    print("Which tasks keep each component (P parity, C copy, Y polynomial):\n")
    comps = list(dict.fromkeys(r["unit"] for s in seeds for r in s["shared"]["components"]))
    rows = []
    for comp in comps:
        cells = []
        for s in seeds:
            used = next((r["used_by"] for r in s["shared"]["components"] if r["unit"] == comp), [])
            cells.append("".join(LETTER[t] for t in TASKS if t in used) or "-")
        rows.append([comp, *cells])
    table(["component", *names], rows)

    for grain in ("components", "nodes"):
        keys = ["shared", *([] if len(TASKS) < 3 else ["parity+copy", "parity+polynomial", "copy+polynomial"]),
                *[f"only {t}" for t in TASKS]]
        rows = [[k, *[s["shared"]["counts"][grain].get(k, 0) for s in seeds],
                 ms([s["shared"]["counts"][grain].get(k, 0) for s in seeds], "{:.1f}")] for k in keys]
        print(f"{grain.capitalize()} kept by every task's circuit (shared), by two, or by one only:\n")
        table([grain, *names, "mean ± sd"], rows)

    print("Pairwise overlap (Jaccard, mean ± sd over seeds; per seed in brackets):\n")
    rows = []
    for i, pair in enumerate(seeds[0]["shared"]["pairs"]):
        vals = {k: [s["shared"]["pairs"][i][k] for s in seeds] for k in ("component_jaccard", "node_jaccard", "edge_jaccard")}
        rows.append([f"{pair['a']} / {pair['b']}", *[f"{ms(v)} ({', '.join(f'{x:.2f}' for x in v)})" for v in vals.values()]])
    table(["pair", "components", "nodes", "edges (among kept nodes)"], rows)

    other = "polynomial" if "polynomial" in HEADS else TASKS[-1]
    print(f"Iteration heads (comp heads --member, top {TOP} by iteration score) and whether parity's and "
          f"{other}'s top head is one head (kept by the circuits at the answer positions):\n")
    rows = []
    for name, s in zip(names, seeds):
        tops = {t: iteration_heads(s["heads"][t]) for t in HEADS}
        p, y = tops["parity"][0][0], tops[other][0][0]
        kept = [t for t in ("parity", other) if t in s["circuits"] and f"{p}@answer" in s["circuits"][t]["nodes"]]
        rows.append([name, *[", ".join(f"{h} {v:.2f}" for h, v in tops[t]) for t in HEADS],
                     ("yes" if p == y else "no") + (f"; {p}@answer kept by {'+'.join(kept) or 'neither'}" if p == y else "")])
    table(["seed", *[f"{t} iteration heads" for t in HEADS], f"parity's top = {other}'s top"], rows)

    heads = [r["component"] for r in seeds[0]["heads"]["parity"]["rows"] if r["kind"] == "head"]
    print("Iteration score of every head per task (attention from the position predicting s_t to x_t), and the "
          "correlation of the per-head profiles between tasks:\n")
    rows = []
    for name, s in zip(names, seeds):
        prof = {t: [next(r["iteration"] for r in s["heads"][t]["rows"] if r["component"] == h) for h in heads] for t in HEADS}
        for t in HEADS:
            rows.append([name, t, *[f"{v:.2f}" for v in prof[t]], ""])
        rows.append([name, "r", *[""] * len(heads), ", ".join(
            f"{a}/{b} {statistics.correlation(prof[a], prof[b]):.2f}" for i, a in enumerate(HEADS) for b in HEADS[i + 1:])])
    table(["seed", "task", *heads, "Pearson r of the profiles"], rows)

    cross = [s["crosstask"] for s in seeds if s["crosstask"]]
    if cross:
        pairs = [f"{r['source']}->{r['target']}" for r in cross[0]["results"]]
        comps = list(cross[0]["results"][0]["moved"])
        print(f"Cross-task patching (comp crosstask, length {cross[0]['results'][0]['length']}): share of the task-token effect each component "
              "carries alone, mean ± sd over seeds:\n")
        rows = [[c, *[ms([x["results"][k]["moved"][c] for x in cross]) for k in range(len(pairs))]] for c in comps]
        table(["component", *pairs], rows)
        changed = [ms([x["results"][k]["changed"] for x in cross]) for k in range(len(pairs))]
        table(["", *pairs], [["answers the task token changes", *changed]])


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
