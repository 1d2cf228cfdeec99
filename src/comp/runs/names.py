"""Run names and where runs live. No torch.

- the runs directory: ``$COMP_RUNS_DIR`` or ``./runs``;
- a run's default name: ``<task>-<pe>-s<seed>`` (:func:`default_run_name`); the same
  function with ``"{pe}"`` and :data:`SEED` gives the grid template of a study;
- several seeds: a name with ``{seed}`` gets it filled, any other name gets ``-s<seed>``
  (:func:`seed_run_name`); seed lists are written ``0-31``, ``0,3,7`` or ``0-3,8``
  (:func:`parse_seeds`);
- ``--ckpt`` accepts a run name under the runs directory or a path (:func:`resolve_run`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from comp.errors import CompError

DEFAULT_RUNS_DIR = "runs"
SEED = "{seed}"  # in a run name or path: where each seed's number goes


def runs_dir() -> Path:
    """The runs directory: ``$COMP_RUNS_DIR`` or ``./runs``."""
    return Path(os.environ.get("COMP_RUNS_DIR", DEFAULT_RUNS_DIR))


def default_run_name(task: str, encoding: str, seed: "int | str") -> str:
    """``<task>-<encoding>-s<seed>``, the name ``comp train`` gives a run it is not told to name."""
    return seed_run_name(f"{task}-{encoding}", seed)


def seed_run_name(name: str, seed: "int | str") -> str:
    """The run name of ``seed``: ``name`` with ``{seed}`` filled, else ``<name>-s<seed>``."""
    return name.replace(SEED, str(seed)) if SEED in name else f"{name}-s{seed}"


def run_dirs(base: Path, task: str, encoding: str, seeds: Sequence[int], name: "str | None" = None,
             several: bool = False) -> list[Path]:
    """The run directory of each seed under ``base``: named ``name`` (``{seed}`` filled; with
    ``several`` seeds, a name without ``{seed}`` gets ``-s<seed>``), else the default name."""
    if not name:
        return [base / default_run_name(task, encoding, s) for s in seeds]
    if "/" in name or "\\" in name or name.strip(".") == "":
        raise CompError(f"run name {name!r} is a path; give a plain name (a run directory elsewhere: --out DIR)")
    if several:
        return [base / seed_run_name(name, s) for s in seeds]
    return [base / name.replace(SEED, str(s)) for s in seeds]


def seed_run_dir(run_dir: Path, seed: int) -> Path:
    """The run directory of ``seed``: ``run_dir`` with ``{seed}`` filled (``runs/pe=rotary_seed={seed}``),
    else its sibling ``<prefix>-s<seed>`` (``runs/parity-rotary-s0`` -> ``runs/parity-rotary-s3``)."""
    if SEED in str(run_dir):
        return Path(str(run_dir).replace(SEED, str(seed)))
    prefix, sep, _ = run_dir.name.rpartition("-s")
    if not sep:
        raise CompError(f"run {run_dir} is not named <name>-s<seed>; give the seed's place as {{seed}} "
                        f"(--resume 'runs/x_seed={{seed}}'), or resume each seed with comp train --resume DIR")
    return run_dir.parent / seed_run_name(prefix, seed)


def parse_seeds(spec: str) -> list[int]:
    """``"0-31"``, ``"0,3,7"`` or ``"0-3,8"`` -> sorted distinct seeds."""
    seeds: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        try:
            lo, hi = (int(v) for v in part.split("-", 1)) if "-" in part else (int(part), int(part))
        except ValueError:
            raise CompError(f"bad seed {part!r} in --seeds {spec!r}; write seeds like 0-31 or 0,1,5") from None
        if lo < 0 or hi < lo:
            raise CompError(f"seed range {part!r} must be non-negative and low-high, e.g. 0-31")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def resolve_run(spec: "str | Path", base: "Path | None" = None) -> Path:
    """The directory of a run given by name (under the runs directory) or path."""
    path = Path(spec)
    if path.is_dir():
        return path
    candidate = (base or runs_dir()) / str(spec)
    if candidate.is_dir():
        return candidate
    raise CompError(f"no run {str(spec)!r} (looked for {path} and {candidate}); give a run name under runs/ or a path")
