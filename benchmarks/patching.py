"""Batched patching against TransformerLens's one-forward-per-patch loop, in one run.

The full head x position sweep (``hook_z`` at every layer, position and head) of a
2-layer model on parity at length 16 (34 positions), flipping one input bit: comp's
:func:`comp.circuits.patching.patch_head_out_by_pos` against
``transformer_lens.patching.get_act_patch_attn_head_out_by_pos`` on the same model,
inputs, clean cache and metric. Asserts the same results (1e-5) and prints both times
and their ratio (the goal is >= 20x).

    python benchmarks/patching.py                 # random 2-layer model (float64), 32 pairs
    python benchmarks/patching.py --ckpt RUN      # a trained run (float32)

Timings on a shared machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformer_lens import patching as tl_patching

from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos
from comp.model import ModelConfig, build_model
from comp.runs import load_run_for_lengths
from comp.tasks import make_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="", help="a trained run (default: a random model in float64)")
    ap.add_argument("--length", type=int, default=16)
    ap.add_argument("--n", type=int, default=32, help="clean/corrupted pairs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="comp's time is the best of this many")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.ckpt:
        model, what = load_run_for_lengths(args.ckpt, [args.length]).model, args.ckpt
    else:  # random weights give small logit differences: float64 keeps the normalised metric exact
        model = build_model(ModelConfig(n_layers=2, n_ctx=64), seed=0).to(torch.float64).eval()
        what = "random 2-layer model (d_model 64, 4 heads, rotary; float64)"
    task = make_task("parity")
    pair = make_pair(task, args.length, args.n, seed=0, corruption="flip_one")
    metric = LogitDiff.for_pair(model, pair)
    _, clean = model.run_with_cache(pair.clean.tokens)
    corrupted = pair.corrupted.tokens
    sites = model.cfg.n_layers * corrupted.shape[1] * model.cfg.n_heads
    print(f"{what}: {sites} head x position patches, {len(corrupted)} pairs of {corrupted.shape[1]} tokens, "
          f"{args.threads} thread(s)")

    ours_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = patch_head_out_by_pos(model, corrupted, clean, metric)
        ours_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    theirs = tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupted, clean, metric)
    theirs_s = time.perf_counter() - t0

    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    print(f"same results: max |difference| {(ours - theirs).abs().max().item():.2e}, "
          f"max restored {ours.max().item():.3f}")
    print(f"transformer_lens get_act_patch_attn_head_out_by_pos: {theirs_s:8.3f} s")
    print(f"comp patch_head_out_by_pos (best of {args.repeats}):     {min(ours_s):8.3f} s")
    print(f"ratio: {theirs_s / min(ours_s):.1f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
