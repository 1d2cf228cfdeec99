"""Which node pruned from a node-level circuit, added back alone, restores its accuracy?
All candidates (the circuit plus one pruned node each) are scored in one batched pass.

    python docs/results/circuits/addback.py C.json RUN LENGTHS   # -> C-addback-LENGTHS.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from comp.circuits.circuit_eval import NodeEvaluator
from comp.circuits.circuit_score import removed_mask
from comp.circuits.data import analysis_groups, load_for_analysis
from comp.circuits.graph import Graph
from comp.config import EVAL_SEED

N = 32  # sequences per length, as comp circuit


def main(path: Path, ckpt: str, lengths: str) -> None:
    circuit = json.loads(path.read_text())
    run, wanted = load_for_analysis(ckpt, lengths)
    ev = NodeEvaluator(run.model, Graph.of(run.model), analysis_groups(run.task, wanted, N, EVAL_SEED), circuit["ablation"])
    removed = removed_mask(circuit, ev.units)
    pruned = removed.nonzero()[:, 0].tolist()
    rows = removed.repeat(len(pruned) + 1, 1)  # [1 + pruned, units]: the circuit, then the circuit + one node
    for k, i in enumerate(pruned):
        rows[k + 1, i] = False
    r = ev.evaluate(rows).tolist()  # [K, 3]: logit difference, final-answer accuracy, whole-CoT accuracy
    added = sorted(((ev.units[i].label, r[k + 1]) for k, i in enumerate(pruned)), key=lambda x: -x[1][2])
    print(f"circuit alone: logit diff {r[0][0]:.3f}, answer {r[0][1]:.3f}, whole CoT {r[0][2]:.3f}")
    for label, (diff, answer, cot) in added[:5]:
        print(f"+ {label}: logit diff {diff:.3f}, answer {answer:.3f}, whole CoT {cot:.3f}")
    out = {"lengths": wanted, "metrics": ["logit_diff", "acc_answer", "acc_cot"], "circuit": r[0], "added_back": dict(added)}
    path.with_name(f"{path.stem}-addback-{lengths}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
