"""The swap pass again from a committed circuit, verifying more predicted moves per round, on
the discovery and validation batches only (no held-out score), with --ref-n reference rows:

    OMP_NUM_THREADS=1 python docs/results/circuits/refn/wide_swap.py MODEL CIRCUIT.json TRIES [REF_N]

(model under /work/runs/final; TRIES: two-out moves verified exactly per round, 256 in --swap)."""
import json
import sys
import time

import torch

from comp.circuits.circuit_eval import EdgeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.discover import VALIDATION_OFFSET
from comp.circuits.graph import Graph
from comp.circuits.pruning import Pruner, parse_keep
from comp.circuits.swap import both_margins, swap_pass
from comp.config import EVAL_SEED

torch.set_num_threads(1)
m, path, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
ref_n = int(sys.argv[4]) if len(sys.argv) > 4 else 256
run, wanted = load_for_analysis(f"/work/runs/final/{m}", "", "cpu")
task = analysed_task(run.task, "")
keep = parse_keep("logit=0.9,answer=0.97,cot=0.95")
graph = Graph.of(run.model, True)
pr, ck = (Pruner(EdgeEvaluator(run.model, graph, analysis_groups(task, wanted, 32, EVAL_SEED + o, "cpu", ref_n), "mean", 0), keep)
          for o in (0, VALIDATION_OFFSET))
kept = {e["label"] for e in json.load(open(path))["edges"]}
removed = torch.tensor([u.label not in kept for u in pr.ev.units])
print("start", int((~removed).sum()), "margin", float(both_margins(pr, ck, removed[None])[0]), flush=True)
t0 = time.time()
removed, moves = swap_pass(pr, removed, ck, tries=tries)
print(f"[{time.time() - t0:.0f}s] end", int((~removed).sum()), "edges,", len(moves), "moves:", [mv.__dict__ for mv in moves], flush=True)
print("shares disc", pr.shares(removed[None]).tolist(), "valid", ck.shares(removed[None]).tolist())
