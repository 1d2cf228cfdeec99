"""Many seeds in one process: wall time of 32 seeds trained together against one seed.

Both use the default parity model (2 layers, width 64, batch 128, lengths 1-16): one seed
with the single-seed loop (``comp.train.train``), 32 with ``comp.train.multiseed`` (one
vmapped forward and backward for all). The time is that of the second logging window
(the first is warm-up), so setup and the final evaluation do not count. A ratio of 4
means 32 seeds cost as much as 4 seeds one after another would (8x faster).

``seeds-max`` (:func:`bench_max`) doubles the number of seeds (2, 4, 8, ...) until the wall
time passes ``MAX_RATIO`` x one seed's, the memory runs out, or ``MAX_SECONDS`` pass, and
reports the largest count within the ratio: how many seeds one GPU trains at once.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import Options, Row, bench_config, second_window
from comp.runs.names import seed_run_name
from comp.train import train
from comp.train.multiseed import train_seeds


def bench(opts: Options) -> list[Row]:
    n_seeds, d_model, batch, steps = (4, 16, 8, 2) if opts.quick else (32, 64, 128, 8 if opts.device == "cpu" else 100)
    cfg = bench_config(opts, d_model, batch, steps, lengths="1-3" if opts.quick else "1-16")
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "one-s0", quiet=True)
        one = second_window(Path(tmp) / "one-s0")["seconds"]
        seeds = list(range(n_seeds))
        train_seeds(cfg, seeds, [Path(tmp) / seed_run_name("many", s) for s in seeds], quiet=True)
        many = second_window(Path(tmp) / "many-s0")["seconds"]
    ratio = many / one
    on_gpu = opts.device.startswith("cuda")
    return [
        Row(
            "seeds",
            f"wall time, {n_seeds} seeds in one process / 1 seed (d{d_model}, batch {batch}, {steps} steps)",
            comp=many,
            baseline=one,
            ratio=ratio,
            goal="<= 4" if on_gpu else "(goal is for GPUs)",
            met=(ratio <= 4) if on_gpu else None,
            note=f"{n_seeds / ratio:.1f}x faster than {n_seeds} seeds one after another",
        )
    ]


MAX_RATIO = 4.0  # the goal (issue 15): the most seeds at <= 4x one seed's wall time
MAX_SECONDS = 150.0  # the search stops starting new counts after this long


def window_seconds(cfg, n_seeds: int, root: Path) -> float:
    """Wall time of the second logging window: one seed with the single-seed loop, else ``n_seeds`` packed."""
    if n_seeds == 1:
        train(cfg, root / "one-s0", quiet=True)
        return second_window(root / "one-s0")["seconds"]
    seeds = list(range(n_seeds))
    train_seeds(cfg, seeds, [root / seed_run_name(f"n{n_seeds}", s) for s in seeds], quiet=True)
    return second_window(root / f"n{n_seeds}-s0")["seconds"]


def bench_max(opts: Options) -> list[Row]:
    d_model, batch, steps, cap = (16, 8, 2, 4) if opts.quick else (64, 128, 8 if opts.device == "cpu" else 100, 4096)
    cfg = bench_config(opts, d_model, batch, steps, lengths="1-3" if opts.quick else "1-16")
    ratios: dict[int, float] = {}
    stopped = f"reached {cap} seeds"
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        one = window_seconds(cfg, 1, Path(tmp))
        n = 2
        while n <= cap:
            if time.monotonic() - start > MAX_SECONDS:
                stopped = f"out of time ({MAX_SECONDS:.0f} s) before {n} seeds"
                break
            try:
                ratios[n] = window_seconds(cfg, n, Path(tmp)) / one
            except torch.OutOfMemoryError:
                stopped = f"out of memory at {n} seeds"
                break
            if ratios[n] > MAX_RATIO:
                stopped = f"{n} seeds took {ratios[n]:.2f}x"
                break
            n *= 2
    within = [k for k, r in ratios.items() if r <= MAX_RATIO]
    best = max(within, default=1)
    return [
        Row(
            "seeds-max",
            f"most seeds in one process within {MAX_RATIO:g}x one seed's wall time (d{d_model}, batch {batch}, "
            f"{steps} steps; doubling)",
            comp=best,
            baseline=one,
            ratio=ratios.get(best, 1.0),
            goal="largest" if opts.device.startswith("cuda") else "(goal is for GPUs)",
            note=f"{stopped}; ratios " + ", ".join(f"{k}: {r:.2f}" for k, r in ratios.items()),
            extra={"ratios": ratios, "one_seed_s": one},
        )
    ]
