"""What every benchmark shares: its options, the row it reports, timing and machine facts."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from comp.config import RunConfig, TaskConfig, TrainConfig, git_commit
from comp.model import ModelConfig
from comp.runs.files import METRICS_FILE


@dataclass
class Options:
    """How the suite runs: device, sizes, compile."""

    device: str = "cpu"  # cpu | cuda
    quick: bool = False  # tiny sizes: a smoke test of every code path, not a measurement
    compile: bool = False  # torch.compile comp's loop and the baselines (CUDA only)
    compile_step: bool = False  # comp: the whole step compiled (train.compile_step; CUDA graphs on a GPU)

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


@dataclass
class Row:
    """One line of the table: comp's figure against a baseline measured in the same run."""

    bench: str  # benchmark key (throughput, memory, seeds, solve, patching)
    measure: str  # what the numbers are, e.g. "tokens/s, 2L d128, batch 256"
    comp: float | None = None  # comp's figure
    baseline: float | None = None  # the baseline's figure (same run, same machine)
    ratio: float | None = None  # as the measure says, e.g. comp / baseline
    goal: str = ""  # e.g. "<= 4" or "<= 300 s"
    met: bool | None = None  # whether the goal is met (None: no goal, or not measured)
    note: str = ""  # sizes, caveats, or why the row is empty
    extra: dict = field(default_factory=dict)  # further figures for the JSON

    def as_dict(self) -> dict:
        return asdict(self)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Wall-clock seconds of a block, with the device drained at both ends."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds = 0.0

    def __enter__(self) -> "Timer":
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def bench_config(opts: Options, d_model: int, batch_size: int, steps: int, lengths: str = "1-16") -> RunConfig:
    """A training config for timing: no periodic evaluation or early stop, two logging
    windows (the first is warm-up), a minimal final evaluation, no checkpoints between."""
    return RunConfig(
        task=TaskConfig(name="parity"),
        model=ModelConfig(d_model=d_model, n_ctx=64),
        train=TrainConfig(
            steps=2 * steps, batch_size=batch_size, train_lengths=lengths, eval_every=0, target_acc=0.0,
            log_every=steps, ckpt_every=10**9, final_eval_lengths="1", final_eval_n=8, device=opts.device,
            compile=opts.compile, compile_step=opts.compile_step,
        ),
    )


def machine(device: torch.device) -> dict:
    """The facts a reader needs to compare figures: CPU, GPU, library versions, commit."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def second_window(run_dir: Path) -> dict:
    """The second logging window of a :func:`bench_config` run (the first is warm-up):
    ``{"seconds", "tokens_per_s"}``."""
    rows = [json.loads(line) for line in (Path(run_dir) / METRICS_FILE).read_text().splitlines()]
    first, second = [r for r in rows if "loss" in r][:2]
    return {"seconds": second["elapsed"] - first["elapsed"], "tokens_per_s": second["tokens_per_s"]}
