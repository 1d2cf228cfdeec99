"""Batched patching against TransformerLens's one-forward-per-patch loop, in one run.

The full head x position sweep (``hook_z`` at every layer, position and head) of a
2-layer model on parity at length 16 (34 positions), flipping one input bit: comp's
:func:`comp.circuits.patching.patch_head_out_by_pos` against
``transformer_lens.patching.get_act_patch_attn_head_out_by_pos`` on the same model,
inputs, clean cache and metric. Asserts the same results (1e-5) and prints both times
and their ratio (the goal is >= 20x).

    python benchmarks/patching.py                 # random 2-layer model (float64), 32 pairs
    python benchmarks/patching.py --ckpt RUN      # a trained run (float32)
    python -m benchmarks --only patching          # the same sweep as a row of the suite (``bench``)

Timings on a shared machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

import torch
from transformer_lens import patching as tl_patching

from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos
from comp.model import ModelConfig, build_model
from comp.runs.load import load_run_for_lengths
from comp.tasks import make_task

if TYPE_CHECKING:  # pragma: no cover
    from benchmarks.common import Options, Row


def compare(model, length: int, n: int, repeats: int) -> dict:
    """Both sweeps on the same model, pairs, clean cache and metric: their seconds and agreement."""
    task = make_task("parity")
    pair = make_pair(task, length, n, seed=0, corruption="flip_one", device=next(model.parameters()).device)
    metric = LogitDiff.for_pair(model, pair)
    _, clean = model.run_with_cache(pair.clean.tokens)
    corrupted = pair.corrupted.tokens
    ours_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = patch_head_out_by_pos(model, corrupted, clean, metric)
        ours_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    theirs = tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupted, clean, metric)
    theirs_s = time.perf_counter() - t0
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    return {
        "sites": model.cfg.n_layers * corrupted.shape[1] * model.cfg.n_heads,
        "pairs": len(corrupted),
        "tokens": corrupted.shape[1],
        "ours_s": min(ours_s),
        "theirs_s": theirs_s,
        "max_diff": (ours - theirs).abs().max().item(),
        "max_restored": ours.max().item(),
    }


def random_model(device: str = "cpu"):
    """A random 2-layer model in float64 (random weights give small logit differences:
    float64 keeps the normalised metric exact)."""
    return build_model(ModelConfig(n_layers=2, n_ctx=64), seed=0, device=device).to(torch.float64).eval()


def bench(opts: Options) -> list[Row]:
    """The suite's row (``python -m benchmarks``): the sweep at length 16 (4 with ``quick``)."""
    from benchmarks.common import Row  # here: the file also runs as a plain script

    length, n, repeats = (4, 4, 1) if opts.quick else (16, 32, 3)
    r = compare(random_model(opts.device), length, n, repeats)
    ratio = r["theirs_s"] / r["ours_s"]
    return [Row(
        "patching",
        f"seconds, head x position patching sweep, length {length}: TransformerLens / comp batched",
        comp=r["ours_s"], baseline=r["theirs_s"], ratio=ratio, goal=">= 20", met=ratio >= 20,
        note=f"{r['sites']} patches x {r['pairs']} pairs, same results (max diff {r['max_diff']:.1e})",
        extra=r,
    )]


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
    else:
        model, what = random_model(), "random 2-layer model (d_model 64, 4 heads, rotary; float64)"
    r = compare(model, args.length, args.n, args.repeats)
    print(f"{what}: {r['sites']} head x position patches, {r['pairs']} pairs of {r['tokens']} tokens, "
          f"{args.threads} thread(s)")
    print(f"same results: max |difference| {r['max_diff']:.2e}, max restored {r['max_restored']:.3f}")
    print(f"transformer_lens get_act_patch_attn_head_out_by_pos: {r['theirs_s']:8.3f} s")
    print(f"comp patch_head_out_by_pos (best of {args.repeats}):     {r['ours_s']:8.3f} s")
    print(f"ratio: {r['theirs_s'] / r['ours_s']:.1f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
