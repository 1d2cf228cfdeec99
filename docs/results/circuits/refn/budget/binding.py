"""Which targets each kept edge's removal misses, on the discovery and validation batches only
(no held-out or test score): the diagnostic behind the budget section of circuits-discovered.md.

    OMP_NUM_THREADS=1 python docs/results/circuits/refn/budget/binding.py MODEL CIRCUIT.json

(model under /work/runs/final; 256 reference sequences per length, the --ref-n 256 rule's targets.)
Prints each kept edge removed alone: its (logit, answer, cot) shares on both batches and the
targets it misses (L, A, C), then the count of each pattern."""
import json
import sys
from collections import Counter

import torch

from comp.circuits.circuit_eval import EdgeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.discover import VALIDATION_OFFSET
from comp.circuits.graph import Graph
from comp.circuits.pruning import Pruner, parse_keep
from comp.config import EVAL_SEED

torch.set_num_threads(1)
m, path = sys.argv[1], sys.argv[2]
run, wanted = load_for_analysis(f"/work/runs/final/{m}", "", "cpu")
task = analysed_task(run.task, "")
keep = parse_keep("logit=0.9,answer=0.97,cot=0.95")
graph = Graph.of(run.model, True)
pr, ck = (Pruner(EdgeEvaluator(run.model, graph, analysis_groups(task, wanted, 32, EVAL_SEED + o, "cpu", 256), "mean", 0), keep)
          for o in (0, VALIDATION_OFFSET))
kept = {e["label"] for e in json.load(open(path))["edges"]}
labels = [u.label for u in pr.ev.units]
removed = torch.tensor([label not in kept for label in labels])
idx = [i for i in range(len(labels)) if not removed[i]]
rows = removed.repeat(len(idx), 1)  # [kept, units]: each kept edge removed alone
rows[torch.arange(len(idx)), torch.tensor(idx)] = True
disc, valid = pr.shares(rows), ck.shares(rows)  # [kept, 3]
print("circuit", pr.shares(removed[None]).tolist(), ck.shares(removed[None]).tolist())
counts = Counter()
for k, i in enumerate(idx):
    misses = tuple(name for name, a, b in zip("LAC", (disc[k] < pr.thresholds).tolist(), (valid[k] < pr.thresholds).tolist()) if a or b)
    counts[misses] += 1
    print(f"{labels[i]:32s} discovery={[round(x, 3) for x in disc[k].tolist()]} "
          f"validation={[round(x, 3) for x in valid[k].tolist()]} misses={misses}")
print(counts)
