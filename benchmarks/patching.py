"""Patching sweeps against TransformerLens's one-forward-per-patch loop, in one run.

The three sweeps of a 2-layer model on parity at length 16 (34 positions), flipping one
input bit: comp's :func:`comp.circuits.patching.patch_resid_pre`,
:func:`~comp.circuits.patching.patch_head_out_by_pos` and
:func:`~comp.circuits.patching.patch_mlp_out` against ``transformer_lens.patching``'s
``get_act_patch_resid_pre``, ``get_act_patch_attn_head_out_by_pos`` and
``get_act_patch_mlp_out``, called at their best (under ``torch.no_grad()``) on the same
model, inputs, clean cache and metric, in alternating rounds. Asserts the same results
(1e-5) and prints both times and their ratio (the goal is >= 100x).

    python -m benchmarks.patching                 # random 2-layer model (float64), 32 pairs
    python -m benchmarks.patching --n 256         # the CLI's default number of pairs
    python -m benchmarks.patching --ckpt RUN      # a trained run (float32)
    python -m benchmarks.patching --process-time  # CPU seconds of this process (a loaded machine)
    python -m benchmarks --only patching          # the same sweeps as rows of the suite (``bench``)

(``python benchmarks/patching.py`` would put ``benchmarks/`` first on the import path,
where ``benchmarks/kernels.py`` hides the ``kernels`` package transformers probes for.)
Timings on a shared machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING

import torch
from transformer_lens import patching as tl_patching

from comp.catalog import N_SEQUENCES
from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos, patch_mlp_out, patch_resid_pre
from comp.model import ModelConfig, build_model
from comp.runs.load import load_run_for_lengths
from comp.tasks import make_task

if TYPE_CHECKING:  # pragma: no cover
    from benchmarks.common import Options, Row


SWEEPS = {  # sweep: (comp's, TransformerLens's)
    "resid_pre": (patch_resid_pre, tl_patching.get_act_patch_resid_pre),
    "head_out": (patch_head_out_by_pos, tl_patching.get_act_patch_attn_head_out_by_pos),
    "mlp_out": (patch_mlp_out, tl_patching.get_act_patch_mlp_out),
}


def compare(model, length: int, n: int, rounds: int, clock=time.perf_counter) -> dict:
    """Each sweep by comp and by TransformerLens (under ``torch.no_grad()``, its best) on the
    same model, pairs, clean cache and metric, in alternating rounds: the best seconds of
    each, their ratio and agreement, per sweep. ``clock``: wall clock, or
    ``time.process_time`` (this process's CPU seconds: less moved by other processes)."""
    task = make_task("parity")
    pair = make_pair(task, length, n, seed=0, corruption="flip_one", device=next(model.parameters()).device)
    metric = LogitDiff.for_pair(model, pair)
    corrupted = pair.corrupted.tokens
    out = {}
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
        for name, (ours_fn, theirs_fn) in SWEEPS.items():
            ours_s, theirs_s = [], []
            for _ in range(rounds):
                t0 = clock()
                theirs = theirs_fn(model, corrupted, clean, metric)
                theirs_s.append(clock() - t0)
                t0 = clock()
                ours = ours_fn(model, corrupted, clean, metric)
                ours_s.append(clock() - t0)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
            out[name] = {
                "sites": ours.numel(), "ours_s": min(ours_s), "theirs_s": min(theirs_s),
                "ratio": min(theirs_s) / min(ours_s), "max_diff": (ours - theirs).abs().max().item(),
                "max_restored": ours.max().item(),
            }
    return {"pairs": len(corrupted), "tokens": corrupted.shape[1], "sweeps": out}


def random_model(device: str = "cpu"):
    """A random 2-layer model in float64 (random weights give small logit differences:
    float64 keeps the normalised metric exact)."""
    return build_model(ModelConfig(n_layers=2, n_ctx=64), seed=0, device=device).to(torch.float64).eval()


def bench(opts: Options) -> list[Row]:
    """The suite's rows (``python -m benchmarks``): each sweep at length 16 (4 with ``quick``)
    on 32 pairs, and again on the CLI's default ``--n`` (a second setting, its own rows)."""
    from benchmarks.common import Row  # here: the file also runs as a plain script

    length, settings, rounds = (4, [(4, "")], 1) if opts.quick else (16, [(32, ""), (N_SEQUENCES, f"_n{N_SEQUENCES}")], 2)
    rows = []
    for n, suffix in settings:
        r = compare(random_model(opts.device), length, n, rounds)
        rows += [Row(
            f"patching_{name}{suffix}",
            f"seconds, {name} patching sweep, length {length}, {r['pairs']} pairs: TransformerLens (no_grad) / comp",
            comp=s["ours_s"], baseline=s["theirs_s"], ratio=s["ratio"], goal=">= 100", met=s["ratio"] >= 100,
            note=f"{s['sites']} patches x {r['pairs']} pairs, same results (max diff {s['max_diff']:.1e}), "
                 f"best of {rounds} alternating rounds",
            extra=s,
        ) for name, s in r["sweeps"].items()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="", help="a trained run (default: a random model in float64)")
    ap.add_argument("--length", type=int, default=16)
    ap.add_argument("--n", type=int, default=32, help="clean/corrupted pairs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; each side's time is its best")
    ap.add_argument("--process-time", action="store_true",
                    help="time by this process's CPU seconds, not the wall clock (a loaded machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.ckpt:
        model, what = load_run_for_lengths(args.ckpt, [args.length]).model, args.ckpt
    else:
        model, what = random_model(), "random 2-layer model (d_model 64, 4 heads, rotary; float64)"
    r = compare(model, args.length, args.n, args.rounds, time.process_time if args.process_time else time.perf_counter)
    print(f"{what}: {r['pairs']} pairs of {r['tokens']} tokens, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}, {'process' if args.process_time else 'wall-clock'} seconds")
    for name, s in r["sweeps"].items():
        print(f"{name:9s}: {s['sites']:4d} patches  TransformerLens (no_grad) {s['theirs_s']:8.3f} s  "
              f"comp {s['ours_s']:7.4f} s  ratio {s['ratio']:6.1f}x (goal >= 100)  max diff {s['max_diff']:.1e}")


if __name__ == "__main__":
    main()
