"""Host synchronizations in the training hot loop, counted by CUDA itself.

With ``torch.cuda.set_sync_debug_mode("warn")`` every operation that makes the host
wait for the GPU warns. Training runs with logging every ``log_every`` steps and no
evaluation or checkpoints between; syncs are attributed to steps by the loop's own
``should_stop`` poll (once per step). A sync-free hot loop shows syncs on log steps
only. (On the CPU there is nothing to wait for; ``tests/test_hot_loop.py`` checks the
same property there by counting host reads of tensors.)

``python -m benchmarks.syncs --device cuda`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import torch

from benchmarks.common import Options, bench_config
from comp.runs.names import seed_run_name
from comp.train import train
from comp.train.multiseed import train_seeds


def hot_loop_syncs(device: str, n_seeds: int = 1, steps: int = 30, log_every: int = 10) -> dict:
    """Syncs per step of a short training run (single-seed loop, or ``n_seeds`` together)."""
    if not device.startswith("cuda"):
        return {"seeds": n_seeds, "skipped": "no CUDA device: nothing runs asynchronously"}
    cfg = bench_config(Options(device=device), d_model=64, batch_size=128, steps=log_every)
    cfg.train.steps = steps
    marks: list[int] = []
    records: list[warnings.WarningMessage] = []

    def probe() -> bool:
        marks.append(len(records))
        if len(marks) == 1:
            torch.cuda.set_sync_debug_mode("warn")  # from the end of step 1: setup excluded
        return False

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = caught
        try:
            if n_seeds == 1:
                train(cfg, Path(tmp) / "r-s0", quiet=True, should_stop=probe)
            else:
                seeds = list(range(n_seeds))
                train_seeds(cfg, seeds, [Path(tmp) / seed_run_name("r", s) for s in seeds], quiet=True, should_stop=probe)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    per_step = {k + 1: records[marks[k - 1] : marks[k]] for k in range(1, len(marks))}
    hot = {s: w for s, w in per_step.items() if s % log_every and s != steps and w}
    where = Counter(f"{w.filename}:{w.lineno}" for ws in hot.values() for w in ws)
    return {
        "seeds": n_seeds,
        "steps_checked": len(per_step),
        "syncs_on_log_steps": sum(len(w) for s, w in per_step.items() if not s % log_every or s == steps),
        "syncs_on_other_steps": sum(len(w) for w in hot.values()),
        "where": dict(where.most_common(5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", type=int, default=8, help="seeds of the multi-seed check")
    args = parser.parse_args()
    print(json.dumps({"single": hot_loop_syncs(args.device), "multi": hot_loop_syncs(args.device, args.seeds)}))


if __name__ == "__main__":
    main()
