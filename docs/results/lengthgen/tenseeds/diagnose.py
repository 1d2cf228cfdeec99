"""Diagnosis of a ten-seed run that fails at long lengths: which head's dilution causes it.

    PYTHONPATH=src python docs/results/lengthgen/tenseeds/diagnose.py RUN --length 256 --alpha 1.25 [--n 32]

Multiplies the learned ``log n`` scale (``blocks.L.attn.ssmax_scale``) of every layer, then of
one layer, then of one head at a time, by ``alpha`` (sharper attention at inference), and prints
the teacher-forced whole-CoT accuracy and loss at ``--length`` for each (teacher-forced whole-CoT
accuracy equals greedy decoding's). This reads the test lengths: it is a diagnosis, and nothing in
it chooses a setting for the study.
"""

from __future__ import annotations

import argparse
import json

import torch

from comp.evaluation import evaluate_length
from comp.runs.load import load_run_for_lengths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--alpha", type=float, default=1.25)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = load_run_for_lengths(args.run, [args.length])
    model = run.model.eval()
    base = [b.attn.ssmax_scale.detach().clone() for b in model.blocks]  # [head] per layer
    n_layers, n_heads = len(base), len(base[0])
    targets = ["none", "all"] + [f"L{layer}" for layer in range(n_layers)]
    targets += [f"L{layer}H{h}" for layer in range(n_layers) for h in range(n_heads)]
    rows = []
    for what in targets:
        for layer, (block, scale) in enumerate(zip(model.blocks, base)):
            factor = torch.ones_like(scale)  # [head]
            for h in range(n_heads):
                if what in ("all", f"L{layer}", f"L{layer}H{h}"):
                    factor[h] = args.alpha
            block.attn.ssmax_scale.data = scale * factor
        r = evaluate_length(model, run.task, args.length, n=args.n, generate=False)
        rows.append({"sharpened": what, "alpha": args.alpha, "length": args.length, "n": args.n,
                     "acc_cot": r.acc_cot, "loss": r.loss})
        print(f"alpha {args.alpha} on {what:6s}: whole-CoT {r.acc_cot:.3f}  loss {r.loss:.2e}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"run": args.run, "scales": [s.tolist() for s in base], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
