"""The files of a training run, and the state they put it in. No torch: the grid's task
runner reads states without importing it.

``runs/<name>/`` holds ``config.json`` (settings, versions, git commit),
``training_state.safetensors`` (resume), ``model.safetensors`` (weights),
``metrics.jsonl``, ``eval.json`` and, with ``--save-every``, ``snapshots/step_000100.safetensors``
(the weights after that many steps); every module names them by the constants and functions below.

A run directory is, by its files:

- ``finished``: ``eval.json`` and ``model.safetensors`` exist (written last, by the final evaluation);
- ``interrupted``: ``training_state.safetensors`` exists: ``comp train --resume`` continues it exactly;
- ``stale``: ``config.json`` exists but no checkpoint yet (killed before its first one): start over;
- ``new``: none of these.

``comp train`` (single or multi-seed), ``comp grid`` and ``comp lengthgen`` all decide
what to do with a run from :func:`run_status`, and clear a stale run with
:func:`clear_unstarted`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from comp.io import read_json
from comp.runs.lock import refuse_if_busy

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATE_FILE = "training_state.safetensors"
MODEL_FILE = "model.safetensors"
EVAL_FILE = "eval.json"
SNAPSHOT_DIR = "snapshots"

RunStatus = Literal["finished", "interrupted", "stale", "new"]


def run_status(run_dir: "str | Path") -> RunStatus:
    """What the files of ``run_dir`` say about the run (see the module docstring)."""
    run_dir = Path(run_dir)
    if (run_dir / EVAL_FILE).exists() and (run_dir / MODEL_FILE).exists():
        return "finished"
    if (run_dir / STATE_FILE).exists():
        return "interrupted"
    return "stale" if (run_dir / CONFIG_FILE).exists() else "new"


def read_eval(run_dir: "str | Path") -> dict:
    """The final evaluation of a finished run (``eval.json``)."""
    return read_json(Path(run_dir) / EVAL_FILE, "run evaluation")


def clear_unstarted(run_dir: "str | Path") -> None:
    """Remove what a run killed before its first checkpoint left (its config and first
    metrics), so that it can start again from scratch. A run another live process holds
    (``.lock``: it is starting, not killed) is refused, not cleared."""
    refuse_if_busy(run_dir)
    for name in (CONFIG_FILE, METRICS_FILE):
        (Path(run_dir) / name).unlink(missing_ok=True)


def snapshot_path(run_dir: "str | Path", step: int) -> Path:
    """Where the weights after ``step`` optimizer steps are kept: ``snapshots/step_000100.safetensors``."""
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{step:06d}.safetensors"


def snapshot_steps(run_dir: "str | Path") -> list[tuple[int, Path]]:
    """The snapshots of a run, ``(step, path)`` by step (none: an empty list)."""
    found = []
    for path in (Path(run_dir) / SNAPSHOT_DIR).glob("step_*.safetensors"):
        digits = path.stem.removeprefix("step_")
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)
