"""Diagnostic: whole-CoT ratio spread of a circuit over batches, with reference sets of 32 vs 256 per length."""
import json, sys, torch
from comp.circuits.data import analysed_task, load_for_analysis, Group
from comp.circuits.circuit_score import score_circuit
from comp.evaluation import eval_batch
torch.set_num_threads(1)
ckpt, cj = sys.argv[1], sys.argv[2]
seeds = [int(s) for s in sys.argv[3].split(",")]
circuit = json.load(open(cj))
run, wanted = load_for_analysis(ckpt, "", "cpu")
task = analysed_task(run.task, "")
for S in seeds:
    row = [S]
    for R in (32, 256):
        groups = [Group(m, L, eval_batch(m, L, 32, S, "cpu"), eval_batch(m, L, R, S + 1, "cpu")) for m in task.components() for L in wanted]
        f = score_circuit(run.model, groups, circuit)
        row += [R, round(f["circuit"].acc_cot / f["model"].acc_cot, 4), round(f["circuit"].acc_answer / f["model"].acc_answer, 4)]
    print(*row, flush=True)
