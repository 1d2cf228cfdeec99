"""The training step with and without comp's training kernels, on the default model.

Both steps train ``comp train parity``'s default model (width 64, 4 heads, rotary, batch
128, parity 1-16) on the same data stream, alternating, in one process: the *hook* step
is TransformerLens's computation (einsum attention, its LayerNorm, one right-padded
batch, for-loop AdamW), the *fused* step is what ``comp.train`` runs (``comp.model.fused``
attention and LayerNorm, ``comp.train.buckets`` on a CPU, fused AdamW). The ratio is
hook seconds per step over fused seconds per step; the time to solve scales with it.
The *packing* row times comp's step with packing (``comp.model.packed``, the default on a
CPU) against the same step with length buckets instead, at the paper's shape (width 128,
1 head, standard positions, batch 256) and the default model's, alternating.

Run alone: ``python -m benchmarks --only kernels``.
"""

from __future__ import annotations

from typing import Literal

import torch

from benchmarks.common import Options, Row, Timer
from comp.model import ModelConfig, build_model
from comp.model.fused import fused_training
from comp.tasks import make_task
from comp.train.buckets import forward_backward, n_buckets

Mode = Literal["hook", "buckets", "fused"]  # hook path | comp's step with length buckets | comp's step (packing)


def seconds_per_step(mode: Mode, device: torch.device, batch: int, lengths: str, steps: int, d_model: int,
                     model_cfg: "ModelConfig | None" = None) -> float:
    """Seconds per training step after ``steps`` warm-up steps."""
    fused = mode != "hook"
    model = build_model(model_cfg or ModelConfig(d_model=d_model, n_ctx=64), seed=0, device=device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True if fused else None)
    gen = torch.Generator(device=device).manual_seed(0)
    task = make_task("parity")
    buckets = n_buckets(batch, device) if fused else 1

    def step() -> None:
        b = task.sample(gen, lengths, batch)
        opt.zero_grad(set_to_none=True)
        with model.sampled_positions(b.tokens, gen):
            forward_backward(model, model, b, buckets, packing=mode == "fused")
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    with fused_training(model, fused):
        for _ in range(steps):
            step()
        with Timer(device) as timer:
            for _ in range(steps):
                step()
    return timer.seconds / steps


def bench(opts: Options) -> list[Row]:
    d_model, batch, lengths, steps = (16, 8, "1-3", 2) if opts.quick else (64, 128, "1-16", 10)
    hook, fused = [], []
    for _ in range(1 if opts.quick else 2):
        hook.append(seconds_per_step("hook", opts.torch_device, batch, lengths, steps, d_model))
        fused.append(seconds_per_step("fused", opts.torch_device, batch, lengths, steps, d_model))
    ratio = min(hook) / min(fused)
    return [
        Row(
            "kernels",
            f"ms per training step, default model (d{d_model}, 4 heads, rotary, batch {batch}): "
            "hook path, padded, for-loop AdamW / comp's fused step",
            comp=1000 * min(fused),
            baseline=1000 * min(hook),
            ratio=ratio,
            note=f"{steps} timed steps after {steps} warm-up, best of {len(hook)}",
            extra={"fused_s": fused, "hook_s": hook},
        ),
        *packing_rows(opts),
    ]


def packing_rows(opts: Options) -> list[Row]:
    """Packing against length buckets: the paper's shape and the default model, alternating."""
    quick = opts.quick
    shapes = {
        "paper shape (d128, 1 head, standard, batch 256)": (ModelConfig(d_model=16 if quick else 128, n_heads=1,
                                                              encoding="standard", n_ctx=64), 8 if quick else 256),
        "default model (d64, 4 heads, rotary, batch 128)": (ModelConfig(d_model=16 if quick else 64, n_ctx=64),
                                                            8 if quick else 128),
    }
    lengths, steps = ("1-3", 2) if quick else ("1-16", 10)
    rows = []
    for name, (cfg, batch) in shapes.items():
        bucketed, packed = [], []
        for _ in range(1 if quick else 2):
            bucketed.append(seconds_per_step("buckets", opts.torch_device, batch, lengths, steps, 0, cfg))
            packed.append(seconds_per_step("fused", opts.torch_device, batch, lengths, steps, 0, cfg))
        rows.append(Row(
            "packing",
            f"ms per training step, {name}: length buckets / packed rows (comp.model.packed)",
            comp=1000 * min(packed),
            baseline=1000 * min(bucketed),
            ratio=min(bucketed) / min(packed),
            note=f"{steps} timed steps after {steps} warm-up, best of {len(packed)}",
            extra={"packed_s": packed, "buckets_s": bucketed},
        ))
    return rows
