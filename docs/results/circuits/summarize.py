"""Tables of docs/results/circuits-discovered.md from the circuit JSON files in this folder.

    python docs/results/circuits/summarize.py docs/results/circuits

Reads ``<model>-s<seed>-<level>-<method>.json`` (``comp circuit --json``) and
``<model>-s<seed>-<level>-<method>-at<L>.json`` (``comp circuit score --json``) and prints,
per model: one row per seed and level, the mean and spread (population standard
deviation) over seeds, and the circuit found at the training lengths scored at other
lengths. Ratios are the circuit's accuracy over the full model's on the same sequences.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

NAME = re.compile(r"(?P<model>.+)-s(?P<seed>\d+)-(?P<level>nodes|edges)-(?P<method>exact|eap|eap-ig)(-at(?P<at>\d+))?\.json")


def row(r: dict) -> dict:
    m, c, k = r["model"], r["circuit"], r["knocked_out"]
    return {"answer": c["acc_answer"] / m["acc_answer"], "cot": c["acc_cot"] / m["acc_cot"], "recovered": c["recovered"],
            "m_answer": m["acc_answer"], "m_cot": m["acc_cot"], "c_answer": c["acc_answer"], "c_cot": c["acc_cot"],
            "ko_answer": k["acc_answer"], "ko_cot": k["acc_cot"]}


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def discovered(files: dict, model: str) -> list[str]:
    out = ["| seed | level (method) | nodes | edges (share) | final answer: full -> circuit (ratio) | whole CoT: full -> circuit (ratio) "
           "| logit diff recovered | knocked out: answer / CoT | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    by_level: dict[str, list[dict]] = {}
    for (mod, seed, level, method, at), r in sorted(files.items()):
        if mod != model or at:
            continue
        x = row(r)
        x["share"] = r["n_edges"] / r["n_edges_total"]
        by_level.setdefault(f"{level} ({method})", []).append(x)
        a = r.get("attribution")
        extra = f"; eap kept {a['chosen']}, verification dropped {len(a['dropped'])}" if a else ""
        out.append(f"| {seed} | {level} ({method}) | {r['n_nodes']}/{r['n_nodes_total']} | {r['n_edges']}/{r['n_edges_total']} "
                   f"({x['share']:.1%}) | {x['m_answer']:.3f} -> {x['c_answer']:.3f} ({x['answer']:.3f}) | {x['m_cot']:.3f} -> "
                   f"{x['c_cot']:.3f} ({x['cot']:.3f}) | {x['recovered']:.3f} | {x['ko_answer']:.3f} / {x['ko_cot']:.3f} "
                   f"| {r['seconds']:.0f}{extra} |")
    for level, xs in by_level.items():
        out.append(f"| mean ± sd ({len(xs)} seeds) | {level} | | {mean_sd([x['share'] for x in xs])} | ratio {mean_sd([x['answer'] for x in xs])} "
                   f"| ratio {mean_sd([x['cot'] for x in xs])} | {mean_sd([x['recovered'] for x in xs])} | | |")
    return out


def scored(files: dict, model: str) -> list[str]:
    out = ["| seed | circuit (found at 1-16) | scored at | final answer: full -> circuit | whole CoT: full -> circuit | logit diff recovered "
           "| knocked out: answer / CoT |", "|---|---|---|---|---|---|---|"]
    for (mod, seed, level, method, at), r in sorted(files.items(), key=lambda kv: (kv[0][4], kv[0][:4])):
        if mod != model or not at:
            continue
        x = row(r)
        out.append(f"| {seed} | {level} ({method}) | {at} | {x['m_answer']:.3f} -> {x['c_answer']:.3f} | {x['m_cot']:.3f} -> {x['c_cot']:.3f} "
                   f"| {x['recovered']:.3f} | {x['ko_answer']:.3f} / {x['ko_cot']:.3f} |")
    return out


def load(folder: Path, name: re.Pattern, fields: tuple[str, ...]) -> dict[tuple, dict]:
    """The JSON files in ``folder`` whose names match ``name``, keyed by its groups ``fields``
    (``seed`` and ``at`` as numbers, ``at`` 0 when absent). Also used by ``keep/summarize.py``."""
    files = {}
    for p in sorted(folder.glob("*.json")):
        m = name.fullmatch(p.name)
        if m:
            files[tuple(int(m[f] or 0) if f in ("seed", "at") else m[f] for f in fields)] = json.loads(p.read_text())
    return files


def main(folder: Path) -> None:
    files = load(folder, NAME, ("model", "seed", "level", "method", "at"))
    for model in sorted({k[0] for k in files}):
        print(f"## {model}\n")
        print("\n".join(discovered(files, model)) + "\n")
        if any(k[0] == model and k[4] for k in files):
            print("\n".join(scored(files, model)) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
