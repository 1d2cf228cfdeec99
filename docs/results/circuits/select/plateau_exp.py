"""Plateau moves (comp.circuits.swap_plateau) from a committed --swap circuit, on the discovery and
validation batches only (no held-out score): `OMP_NUM_THREADS=1 nice -n 5 python
docs/results/circuits/select/plateau_exp.py default-s1 6` (model under /work/runs/final, at most 6 plateau
moves); its output (2026-11-30, CIRCS9) is plateau-default-s1.log next to it."""
import json
import logging
import sys
import time

import torch

from comp.circuits.circuit_eval import EdgeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.graph import Graph
from comp.circuits.pruning import Pruner, parse_keep
from comp.circuits.swap import both_margins
from comp.circuits.swap_plateau import plateau_pass
from comp.config import EVAL_SEED

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
torch.set_num_threads(1)
m, K = sys.argv[1], int(sys.argv[2])
run, wanted = load_for_analysis(f"/work/runs/final/{m}", "", "cpu")
task = analysed_task(run.task, "")
keep = parse_keep("logit=0.9,answer=0.97,cot=0.95")
graph = Graph.of(run.model, True)
pr, ck = (Pruner(EdgeEvaluator(run.model, graph, analysis_groups(task, wanted, 32, EVAL_SEED + o, "cpu"), "mean", 0), keep) for o in (0, 4))
c = json.load(open(f"/work/wt/circs9/docs/results/circuits/swap/{m}-edges-nodes-swap.json"))
kept = {e["label"] for e in c["edges"]}
removed = torch.tensor([u.label not in kept for u in pr.ev.units])
print("start", int((~removed).sum()), "margin", float(both_margins(pr, ck, removed[None])[0]), flush=True)
t0 = time.time()
removed, swaps, made = plateau_pass(pr, removed, ck, K)
print(f"[{time.time()-t0:.0f}s] end", int((~removed).sum()), len(swaps), "swaps", [m.__dict__ for m in made], flush=True)
print("shares disc", pr.shares(removed[None]).tolist(), "valid", ck.shares(removed[None]).tolist())
