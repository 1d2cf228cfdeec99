"""Training throughput: comp's loop against a plain PyTorch loop over the same model.

Both train the same HookedTransformer (2 layers, width 128, batch 256, parity 1-16) on
the same on-device data stream, with the same autocast and compile settings; the plain
loop is what one writes by hand (sample, forward, cross-entropy with ``ignore_index``,
backward, clip, AdamW). Tokens/s counts non-padding tokens, after a warm-up of the same
number of steps; each loop runs twice, alternating, and the better run counts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import Options, Row, Timer, bench_config, second_window
from comp.config import RunConfig
from comp.model import build_model
from comp.tasks.vocab import PAD
from comp.train import train


def plain_loop(cfg: RunConfig, device: torch.device) -> float:
    """Tokens/s of a hand-written loop: ``log_every`` warm-up steps, then as many timed."""
    model = build_model(cfg.model, seed=cfg.train.seed, device=device)
    return hand_written_loop(model, cfg, device, weight_decay=cfg.train.weight_decay)


def hand_written_loop(model: torch.nn.Module, cfg: RunConfig, device: torch.device, weight_decay: float) -> float:
    """Real tokens/s of ``model`` trained the usual way on ``cfg``'s task: sample, forward,
    cross-entropy with ``ignore_index``, backward, clip, AdamW; ``log_every`` warm-up steps, then as many timed."""
    t = cfg.train
    task = cfg.task.build()
    forward = torch.compile(model) if (t.compile and device.type == "cuda") else model
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=weight_decay)
    gen = torch.Generator(device=device).manual_seed(t.seed)

    def step() -> torch.Tensor:
        batch = task.sample(gen, t.lengths, t.batch_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.amp and device.type == "cuda"):
            logits = forward(batch.tokens)  # [batch, pos, d_vocab]
        targets = batch.tokens[:, 1:].masked_fill(~batch.loss_mask[:, 1:], -100)
        loss = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        return (batch.tokens != PAD).sum()

    for _ in range(t.log_every):
        step()
    with Timer(device) as timer:
        tokens = torch.stack([step() for _ in range(t.log_every)]).sum()
    return int(tokens) / timer.seconds


def comp_loop(cfg: RunConfig, run_dir: Path) -> float:
    """Tokens/s of ``comp.train.train`` over its second logging window."""
    train(cfg, run_dir, quiet=True)
    return second_window(run_dir)["tokens_per_s"]


def alternate(cfg: RunConfig, opts: Options, baseline) -> tuple[list[float], list[float]]:
    """Tokens/s of ``baseline(cfg, device)`` and of comp's loop, in alternating rounds (one when quick)."""
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1 if opts.quick else 2):
            plain.append(baseline(cfg, opts.torch_device))
            ours.append(comp_loop(cfg, Path(tmp) / f"run{i}"))
    return plain, ours


def bench(opts: Options) -> list[Row]:
    d_model, batch, steps = (16, 8, 2) if opts.quick else (128, 256, 10 if opts.device == "cpu" else 200)
    cfg = bench_config(opts, d_model, batch, steps, lengths="1-3" if opts.quick else "1-16")
    plain, ours = alternate(cfg, opts, plain_loop)
    ratio = max(ours) / max(plain)
    return [
        Row(
            "throughput",
            f"train tokens/s, 2L d{d_model} batch {batch}{' +compile' if opts.compile else ''}: comp loop / plain loop",
            comp=max(ours),
            baseline=max(plain),
            ratio=ratio,
            goal=">= 0.9",
            met=ratio >= 0.9,
            note=f"{steps} timed steps after {steps} warm-up, best of {len(ours)}",
            extra={"comp_runs": ours, "plain_runs": plain},
        )
    ]
