"""A training-length measure aimed at dilution itself: how much cooler can attention get before the
model fails at its training lengths?

    PYTHONPATH=src python docs/results/dynamics/temperature.py OUT.json MARGINS.json [MARGINS.json ...]

For each model row of the ``margin.py`` JSON files (their ``run``, a finished run directory; their test accuracies
``acc_L64``/``acc_L128`` are copied, never computed here), at the longest training length (16)
only, 64 sequences of the evaluation seed: every attention logit of every head (content,
position bias and ``log n`` scale together, after the causal mask: ``hook_attn_scores``) is
multiplied by ``c`` for ``c`` in ``GRID``, and the whole-CoT accuracy (teacher-forced) is
measured. Dilution at ``n`` keys acts like a cooler softmax on a head whose margin is fixed;
so ``cool_tolerance = 1 - c_min``, with ``c_min`` the smallest ``c`` at which every ``c' >= c``
of the grid keeps accuracy >= 0.99, is a training-length proxy of how far the read survives.
``cool_loss_05`` is the mean loss at ``c = 0.5`` (negated, so larger is better, for predict.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from comp.config import EVAL_SEED
from comp.evaluation import evaluate_length
from comp.io import write_json
from comp.runs.load import load_run_for_lengths

GRID = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2]
LENGTH, N = 16, 64


def at_temperature(model, task, c: float):
    """Whole-CoT accuracy and loss at LENGTH with every attention logit times ``c``."""
    model.reset_hooks()
    if c != 1.0:
        for block in model.blocks:
            block.attn.hook_attn_scores.add_hook(lambda x, hook: x * c)
    try:
        return evaluate_length(model, task, LENGTH, n=N, seed=EVAL_SEED, generate=False)
    finally:
        model.reset_hooks()


def measure(run: str) -> dict:
    loaded = load_run_for_lengths(run, [LENGTH])  # a finished run's final weights
    model = loaded.model.eval()
    accs = {c: at_temperature(model, loaded.task, c) for c in GRID}
    c_min = 1.0
    for c in GRID:  # descending: the last c of the unbroken run of good ones
        if accs[c].acc_cot < 0.99:
            break
        c_min = c
    return {"cool_tolerance": 1 - c_min, "cool_loss_05": -accs[0.5].loss,
            "cool_acc": {str(c): accs[c].acc_cot for c in GRID}}


def main() -> None:
    torch.set_num_threads(1)
    out, sources = sys.argv[1], sys.argv[2:]
    rows = []
    for src in sources:
        for row in json.loads(Path(src).read_text()):
            new = {k: row[k] for k in ("run", "step") if k in row}
            new.update({k: v for k, v in row.items() if k.startswith("acc_")})
            new.update(measure(row["run"]))
            print(Path(row["run"]).name, row.get("step"), f"tolerance {new['cool_tolerance']:.2f}",
                  f"loss@0.5 {-new['cool_loss_05']:.3g}", f"acc64 {row.get('acc_L64')}", f"acc128 {row.get('acc_L128')}",
                  flush=True)
            rows.append(new)
    write_json(out, rows)


if __name__ == "__main__":
    main()
