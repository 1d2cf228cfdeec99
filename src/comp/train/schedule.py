"""Learning-rate schedule: linear warmup, then cosine decay to a floor or constant; and the
early-stopping rule (:func:`count_target`)."""

from __future__ import annotations

import math

from comp.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def count_target(state, cfg: TrainConfig, low: float) -> None:
    """Early stopping, at the full training range: count consecutive evaluations whose lowest
    accuracy ``low`` holds ``target_acc``; ``patience`` of them end the run (``state``: a TrainState)."""
    if cfg.target_acc <= 0:
        return
    state.hits = state.hits + 1 if low >= cfg.target_acc else 0
    if state.hits >= cfg.patience:
        state.done, state.stop_reason = True, "target"
