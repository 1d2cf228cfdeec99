"""Group moves (comp.circuits.swap_groups) from the committed --swap circuit of default seed 1 (87 edges).

Rebuilds the discovery and validation batches and pruners as `comp circuit --keep logit=0.9,answer=0.97,cot=0.95
--swap` does, removes every group of >= 3 kept edges alone (printed in least-harm order with its logit, answer and
CoT shares on the discovery batch), then repairs the groups from rank SKIP on (argv[1], default 8: ranks 0-7 are
the ones `group_pass` tries with its default GROUP_TRIES) and prints each result; on the first that holds, makes
it, runs the swap pass and writes the circuit to group_moves-default-s1.json. Run from the repository root as
`OMP_NUM_THREADS=1 nice -n 5 python docs/results/circuits/swap/group_moves.py 8`; its output (2026-11-30, CIRC8)
is group_moves-default-s1.log next to it.
"""

import json
import sys
import time
from dataclasses import asdict

import torch

from comp.circuits import swap_groups
from comp.circuits.circuit_eval import EdgeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.graph import Graph
from comp.circuits.pruning import Pruner, parse_keep
from comp.circuits.swap import swap_pass
from comp.config import EVAL_SEED

HERE = "docs/results/circuits/swap"


def main(skip: int) -> None:
    torch.set_num_threads(1)
    run, wanted = load_for_analysis("/work/runs/final/default-s1", "", "cpu")
    task = analysed_task(run.task, "")
    keep = parse_keep("logit=0.9,answer=0.97,cot=0.95")
    graph = Graph.of(run.model, True)
    pr, ck = (Pruner(EdgeEvaluator(run.model, graph, analysis_groups(task, wanted, 32, EVAL_SEED + offset, "cpu"), "mean", 0), keep)
              for offset in (0, 4))  # the discovery batch, the validation batch
    circuit = json.load(open(f"{HERE}/default-s1-edges-nodes-swap.json"))
    kept_labels = {e["label"] for e in circuit["edges"]}
    labels = [u.label for u in pr.ev.units]
    removed = torch.tensor([label not in kept_labels for label in labels])
    ranked, shares = swap_groups.removals(pr, removed, swap_groups.edge_groups(pr.ev.units))
    for rank, ((live, name), share) in enumerate(zip(ranked, shares)):
        print(rank, name, len(live), [round(float(x), 3) for x in share], flush=True)
    t0 = time.time()
    for rank, (live, name) in enumerate(ranked):
        if rank < skip:
            continue
        found = swap_groups.repair_group(pr, ck, removed, torch.tensor(live))
        print(f"[{time.time() - t0:.0f}s] rank {rank} {name} ({len(live)}):",
              "no" if found is None else f"YES {found[1]} margin {found[2]:.4f}", flush=True)
        if found is not None:
            new, added, _ = found
            print("removed", [labels[k] for k in live if new[k]], "added", [labels[k] for k in added], flush=True)
            removed, moves = swap_pass(pr, new, ck)
            print("after swap pass", int((~removed).sum()), [asdict(m) for m in moves], flush=True)
            kept = [label for label, r in zip(labels, removed) if not r]
            json.dump({"kept": kept}, open(f"{HERE}/group_moves-default-s1.json", "w"))
            break


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
