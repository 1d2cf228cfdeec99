"""Tables of docs/results/circuits-discovered.md's section on ``--keep`` from the JSON files here.

    python docs/results/circuits/keep/summarize.py docs/results/circuits/keep

Reads ``<model>-s<seed>-<level>-<tag>.json`` (``comp circuit --keep ... --json``) and
``...-at<L>.json`` (``comp circuit score``). Per circuit: edges kept, the final-answer and
whole-CoT ratios (circuit over full model) on the *held-out* batch (reported) and on the
discovery batch (``fit``, what pruning saw), the logit difference recovered (held out),
and whether the issue's goal is met on the held-out batch: ratios >= 0.95 (answer) and
>= 0.90 (CoT) with at most a quarter of the edges.
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # docs/results/circuits: its summarize.py's loader
from summarize import load  # noqa: E402

NAME = re.compile(r"(?P<model>.+)-s(?P<seed>\d+)-(?P<level>nodes|edges)-(?P<tag>[a-z0-9-]+?)(-at(?P<at>\d+))?\.json")


def ratios(model: dict, circuit: dict) -> tuple[float, float]:
    return circuit["acc_answer"] / model["acc_answer"], circuit["acc_cot"] / model["acc_cot"]


def met(r: dict) -> bool:
    a, c = ratios(r["model"], r["circuit"])
    return a >= 0.95 and c >= 0.90 and r["n_edges"] <= r["n_edges_total"] / 4


def table(files: dict) -> list[str]:
    out = ["| model | seed | level | keep (discovery batch) | order | nodes | edges (share) | held out: answer ratio | held out: CoT ratio "
           "| held out: recovered | discovery batch: answer / CoT ratio | goal met | seconds |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for (model, seed, level, _tag, at), r in sorted(files.items()):
        if at:
            continue
        a, c = ratios(r["model"], r["circuit"])
        fa, fc = ratios(r["fit"]["model"], r["fit"]["circuit"])
        keep = ",".join(f"{k}={v:g}" for k, v in r["keep"].items() if v is not None)
        share = r["n_edges"] / r["n_edges_total"]
        order = r.get("order", "stages") + (", swap" if r.get("swap") else "") + (f", n {r['n']}" if r["n"] != 32 else "")
        groups.setdefault((model, level, keep, order), []).append(dict(share=share, a=a, c=c, ok=met(r)))
        out.append(f"| {model} | {seed} | {level} | {keep} | {order} | {r['n_nodes']}/{r['n_nodes_total']} | {r['n_edges']}/{r['n_edges_total']} "
                   f"({share:.1%}) | {a:.3f} | {c:.3f} | {r['circuit']['recovered']:.3f} | {fa:.3f} / {fc:.3f} | "
                   f"{'yes' if met(r) else 'no'} | {r['seconds']:.0f} |")
    for (model, level, keep, order), xs in groups.items():
        if len(xs) > 1:
            out.append(f"| {model} | mean ± sd ({len(xs)}) | {level} | {keep} | {order} | | {_ms(xs, 'share')} | {_ms(xs, 'a')} "
                       f"| {_ms(xs, 'c')} | | | "
                       f"{sum(x['ok'] for x in xs)} of {len(xs)} | |")
    return out


def _ms(xs: list[dict], key: str) -> str:
    values = [x[key] for x in xs]
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"


def scored(files: dict) -> list[str]:
    out = ["| model | seed | level | keep | scored at | answer ratio | CoT ratio | recovered |", "|---|---|---|---|---|---|---|---|"]
    for (model, seed, level, tag, at), r in sorted(files.items(), key=lambda kv: (kv[0][4], kv[0])):
        if at:
            a, c = ratios(r["model"], r["circuit"])
            out.append(f"| {model} | {seed} | {level} | {tag} | {at} | {a:.3f} | {c:.3f} | {r['circuit']['recovered']:.3f} |")
    return out


def main(folder: Path) -> None:
    files = load(folder, NAME, ("model", "seed", "level", "tag", "at"))
    print("\n".join(table(files)) + "\n")
    if any(k[4] for k in files):
        print("\n".join(scored(files)) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
