"""Diagnostic: whole-CoT ratio spread of a circuit over batches, with reference sets of 32 vs 256 per length."""
import json
import sys

import torch

from comp.circuits.circuit_score import score_circuit
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis

torch.set_num_threads(1)
ckpt, cj = sys.argv[1], sys.argv[2]
seeds = [int(s) for s in sys.argv[3].split(",")]
circuit = json.load(open(cj))
run, wanted = load_for_analysis(ckpt, "", "cpu")
task = analysed_task(run.task, "")
for S in seeds:
    row = [S]
    for R in (32, 256):
        groups = analysis_groups(task, wanted, 32, S, "cpu", ref_n=R)  # reference rows: data seed S + 1
        f = score_circuit(run.model, groups, circuit)
        row += [R, round(f["circuit"].acc_cot / f["model"].acc_cot, 4), round(f["circuit"].acc_answer / f["model"].acc_answer, 4)]
    print(*row, flush=True)
