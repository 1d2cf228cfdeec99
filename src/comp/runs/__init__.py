"""Runs: the one home of everything about a run directory.

A run is a directory ``<runs dir>/<name>/`` written by ``comp train`` and read by every
analysis. This package owns

- :mod:`comp.runs.names`: the runs directory, run names (``<task>-<pe>-s<seed>``, the
  ``{seed}`` template of multi-seed runs), seed lists (``0-31``), finding a run by name;
- :mod:`comp.runs.files`: the file names of a run and the status they put it in
  (``finished``/``interrupted``/``stale``/``new``);
- :mod:`comp.runs.state`: saving: a new run directory, the resumable training state,
  the weights and the final evaluation;
- :mod:`comp.runs.load`: loading: a run's config, a config to resume, a finished model.

``names`` and ``files`` import no torch (the grid's task runner reads run states without
it); they are re-exported here. ``load_run``, ``load_run_config`` and the other loaders
are importable from here too, but import torch only when first used.
"""

from __future__ import annotations

from typing import Any

from comp.runs.files import (
    CONFIG_FILE,
    EVAL_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    RunStatus,
    clear_unstarted,
    run_status,
)
from comp.runs.names import (
    SEED,
    default_run_name,
    parse_seeds,
    resolve_run,
    run_dirs,
    runs_dir,
    seed_run_dir,
    seed_run_name,
)

_LAZY = ("LoadedRun", "load_run", "load_run_config", "load_run_for_lengths", "resume_config")


def __getattr__(name: str) -> Any:
    """The loaders of :mod:`comp.runs.load`, imported (with torch) on first use."""
    if name in _LAZY:
        from comp.runs import load

        return getattr(load, name)
    raise AttributeError(f"module 'comp.runs' has no attribute {name!r}")


__all__ = [
    "CONFIG_FILE", "EVAL_FILE", "METRICS_FILE", "MODEL_FILE", "SEED", "STATE_FILE", "RunStatus", "clear_unstarted",
    "default_run_name", "parse_seeds", "resolve_run", "run_dirs", "run_status", "runs_dir", "seed_run_dir",
    "seed_run_name", *_LAZY,
]
