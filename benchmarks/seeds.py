"""Many seeds in one process: wall time of 32 seeds trained together against one seed.

Both use the default parity model (2 layers, width 64, batch 128, lengths 1-16): one seed
with the single-seed loop (``comp.train.train``), 32 with ``comp.train.multiseed`` (one
vmapped forward and backward for all). The time is that of the second logging window
(the first is warm-up), so setup and the final evaluation do not count. A ratio of 4
means 32 seeds cost as much as 4 seeds one after another would (8x faster).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

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
