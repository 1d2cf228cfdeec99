"""Dilution test: does sharpening attention at evaluation restore accuracy at long lengths?

Multiplies the attention logits of chosen layers by ``c`` (a hook on
``blocks.L.attn.hook_attn_scores``) and prints teacher-forced whole-CoT accuracy by
length. If a model fails long lengths because its heads pick the right keys with margins
too small for the number of keys there (dilution), ``c > 1`` brings the accuracy back.
This is a diagnostic, not a fix: ``c`` is chosen by looking at test lengths.

    python docs/results/lengthgen/sharpen.py RUN_DIR [RUN_DIR ...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json

import torch

from comp.evaluation import eval_batch, predictions
from comp.runs.load import load_run

LENGTHS = (16, 32, 64, 128)
FACTORS = (1.0, 1.5, 2.0, 3.0)
LAYER_SETS = ((0,), (1,), (0, 1))


def accuracy(model, batch, c: float, layers: tuple[int, ...]) -> float:
    """Teacher-forced whole-CoT accuracy on ``batch`` with the logits of ``layers`` times ``c``."""
    hooks = [(f"blocks.{layer}.attn.hook_attn_scores", lambda scores, hook: scores * c) for layer in layers]
    with torch.no_grad():
        logits = model.run_with_hooks(batch.tokens, fwd_hooks=hooks)  # [batch, pos, vocab]
    right = (predictions(logits, batch.tokens) == batch.tokens) | ~batch.loss_mask  # [batch, pos]
    return right.all(1).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for path in args.runs:
        run = load_run(path, n_ctx=2 * max(LENGTHS) + 8)
        batches = {L: eval_batch(run.task, L, args.n, 0) for L in LENGTHS}  # one fixed set per length
        for layers in LAYER_SETS:
            if max(layers) >= run.model.cfg.n_layers:
                continue
            for c in FACTORS:
                accs = [accuracy(run.model, batches[L], c, layers) for L in LENGTHS]
                rows.append({"run": run.name, "layers": list(layers), "c": c,
                             **{f"acc_{L}": a for L, a in zip(LENGTHS, accs)}})
                print(f"{run.name:32s} layers {','.join(map(str, layers)):4s} c={c:<4} "
                      + "  ".join(f"L{L}:{a:.3f}" for L, a in zip(LENGTHS, accs)), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"lengths": LENGTHS, "n": args.n, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
