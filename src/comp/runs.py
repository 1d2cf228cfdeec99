"""Finding and loading finished runs for evaluation and analysis.

``--ckpt`` accepts a run name under the runs directory (``parity-rope-s0``) or a path.
Loading reads ``config.json`` and ``model.safetensors`` only (JSON and safetensors:
nothing is unpickled) and checks that they belong together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from comp.config import RunConfig
from comp.errors import CompError
from comp.io import load_tensors
from comp.model import CompTransformer, build_model, with_context
from comp.run_files import MODEL_FILE
from comp.tasks import Task
from comp.train.loop import load_run_config, resolve_device
from comp.train.state import load_model_tensors

DEFAULT_RUNS_DIR = "runs"


def runs_dir() -> Path:
    """The runs directory: ``$COMP_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("COMP_RUNS_DIR", DEFAULT_RUNS_DIR))


def default_run_name(task: str, encoding: str, seed: int) -> str:
    return f"{task}-{encoding}-s{seed}"


def resolve_run(spec: "str | Path", base: "Path | None" = None) -> Path:
    """The directory of a run given by name (under the runs directory) or path."""
    path = Path(spec)
    if path.is_dir():
        return path
    candidate = (base or runs_dir()) / str(spec)
    if candidate.is_dir():
        return candidate
    raise CompError(f"no run {str(spec)!r} (looked for {path} and {candidate}); give a run name under runs/ or a path")


@dataclass
class LoadedRun:
    path: Path
    config: RunConfig
    model: CompTransformer
    task: Task

    @property
    def name(self) -> str:
        return self.path.name


def load_run(spec: "str | Path", device: str = "cpu", n_ctx: int = 0) -> LoadedRun:
    """Load a finished run's model in eval mode, its task and config.

    ``n_ctx`` widens the context for evaluation beyond the trained one; encodings
    with a learned position table refuse (a clear :class:`CompError`).
    """
    path = resolve_run(spec)
    cfg = load_run_config(path)
    task = cfg.task.build()
    model_cfg = with_context(cfg.model, n_ctx) if n_ctx else cfg.model
    model = build_model(model_cfg, seed=0, device=resolve_device(device))
    load_model_tensors(model, load_tensors(path / MODEL_FILE, "checkpoint"), str(path / MODEL_FILE))
    model.eval()
    return LoadedRun(path, cfg, model, task)


def load_run_for_lengths(spec: "str | Path", lengths: list[int], device: str = "cpu") -> LoadedRun:
    """Load a run with a context wide enough for sequences of the given input lengths
    (widened past the trained ``n_ctx`` only for encodings without a learned table)."""
    run = load_run(spec, device=device)  # config first: the context the lengths need
    longest = max(m.seq_len(max(lengths)) for m in run.task.components())
    return load_run(spec, device=device, n_ctx=longest) if longest > run.config.model.n_ctx else run


@torch.no_grad()
def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models have bit-identical parameters."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
