"""Loading runs: a run's config (also to resume it), and a finished run's model for
evaluation and analysis.

``--ckpt`` accepts a run name under the runs directory (``parity-rope-s0``) or a path
(:func:`comp.runs.names.resolve_run`). Loading reads ``config.json`` and ``model.safetensors`` only (JSON and safetensors:
nothing is unpickled) and checks that they belong together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from comp.config import FORMAT, RunConfig
from comp.errors import CompError
from comp.io import load_tensors, read_json
from comp.model import CompTransformer, build_model, resolve_device, with_context
from comp.runs.files import CONFIG_FILE, MODEL_FILE, STATE_FILE
from comp.runs.names import resolve_run
from comp.runs.state import load_model_tensors
from comp.tasks import Task


def load_run_config(run_dir: Path) -> RunConfig:
    """The settings of a run (its ``config.json``)."""
    data = read_json(run_dir / CONFIG_FILE, "run config")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CompError(f"{run_dir} is not a comp run (config.json lacks format {FORMAT!r}); point at a run made by comp train")
    return RunConfig.from_dict(data, where=f"{run_dir}/{CONFIG_FILE}")


def resume_config(run_dir: Path, steps: int | None = None) -> RunConfig:
    """The config of an existing run to resume, with ``steps`` raised if asked."""
    if not (run_dir / STATE_FILE).exists():
        if not run_dir.exists():
            raise CompError(f"run {run_dir} does not exist; check the path or train it first")
        if not (run_dir / CONFIG_FILE).exists():
            raise CompError(f"{run_dir} is not a comp run (no {CONFIG_FILE}); point --resume at a run made by comp train")
        # stopped before its first checkpoint: its config is all there is; training starts from scratch
    cfg = load_run_config(run_dir)
    if steps is not None:
        cfg.train.steps = steps
    return cfg


@dataclass
class LoadedRun:
    path: Path
    config: RunConfig
    model: CompTransformer
    task: Task

    @property
    def name(self) -> str:
        return self.path.name


def load_run(spec: "str | Path", device: str = "cpu", n_ctx: int = 0, weights: bool = True) -> LoadedRun:
    """Load a finished run's model in eval mode, its task and config.

    ``n_ctx`` widens the context for evaluation beyond the trained one; encodings
    with a learned position table refuse (a clear :class:`CompError`). ``weights=False``
    leaves the model as built (the caller loads weights, e.g. a snapshot of a run still training).
    """
    path = resolve_run(spec)
    cfg = load_run_config(path)
    task = cfg.task.build()
    model_cfg = with_context(cfg.model, n_ctx) if n_ctx else cfg.model
    model = build_model(model_cfg, seed=0, device=resolve_device(device))
    if weights:
        load_model_tensors(model, load_tensors(path / MODEL_FILE, "checkpoint"), str(path / MODEL_FILE))
    model.eval()
    return LoadedRun(path, cfg, model, task)


def load_run_for_lengths(spec: "str | Path", lengths: list[int], device: str = "cpu", weights: bool = True) -> LoadedRun:
    """Load a run with a context wide enough for sequences of the given input lengths
    (widened past the trained ``n_ctx`` only for encodings without a learned table)."""
    run = load_run(spec, device=device, weights=weights)  # config first: the context the lengths need
    longest = max(m.seq_len(max(lengths)) for m in run.task.components())
    return load_run(spec, device=device, n_ctx=longest, weights=weights) if longest > run.config.model.n_ctx else run


@torch.no_grad()
def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models have bit-identical parameters."""
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
