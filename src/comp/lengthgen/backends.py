"""Where a study's runs are trained. ``BACKENDS`` is the registry.

A backend gets the study, its report directory and every :class:`~comp.lengthgen.study.RunJob`,
brings the unfinished runs towards finished, and returns those still unfinished when it
returns (the study reports on the finished ones and lists the rest as pending).

- ``inline``: train them one after another in this process.
- ``slurm``: submit them as one Slurm array through :mod:`comp.grid` (the study's
  directory is the grid: ``OUT/_grid/``, runs in ``OUT/runs/``, wandb group and job name
  after the study) and return at once; rerun the study once the jobs are done.
- ``local``: the same grid, run by local worker processes (``--max-parallel``), waited for:
  ``local`` means what it means in ``comp grid --backend local``.

``grid-local``, the old name of ``local``, is accepted with a note (:data:`RENAMED`).

Every backend decides what to do with a run from :func:`comp.runs.files.run_status`.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from comp.errors import CompError
from comp.grid.launch import launch
from comp.grid.layout import GridDir
from comp.grid.spec import Grid
from comp.grid.status import ACTIVE, grid_status
from comp.lengthgen.study import RunJob, Study
from comp.runs.files import clear_unstarted
from comp.runs.names import SEED, default_run_name
from comp.train import train
from comp.train.multiseed import check_packable


class Backend(Protocol):
    def run(self, study: Study, out: Path, jobs: list[RunJob]) -> list[RunJob]:
        """Bring ``jobs`` towards finished; return those that are not finished yet."""
        ...


def say(msg: str) -> None:
    print(msg, file=sys.stderr)


class InlineBackend:
    """Train unfinished runs here, one after another: resume interrupted ones, start new ones."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def run(self, study: Study, out: Path, jobs: list[RunJob]) -> list[RunJob]:
        todo = [j for j in jobs if j.status != "finished"]
        refuse_queued(out, todo)
        for i, job in enumerate(todo, 1):
            status = job.status
            say(f"[{i}/{len(todo)}] {job.name}: {'resuming' if status == 'interrupted' else 'training'}")
            if status == "stale":  # started but killed before its first checkpoint: nothing to keep
                clear_unstarted(job.run_dir)
            train(job.config, job.run_dir, resume=status == "interrupted", quiet=self.quiet)
        return []


def refuse_queued(out: Path, jobs: list[RunJob]) -> None:
    """Refuse to train here runs that a grid of this study has queued or running (in Slurm, or in workers)."""
    if not jobs or not GridDir(out).exists():
        return
    names = {j.name for j in jobs}
    busy = [r["run"] for r in grid_status(out)["rows"] if r["state"] in ACTIVE and r["run"] in names]
    if busy:
        raise CompError(f"{len(busy)} runs of this study are queued or running under comp grid ({', '.join(busy[:3])}"
                        f"{', ...' if len(busy) > 3 else ''}); see comp grid status {out}, and wait for them or "
                        "scancel them before training here")


def study_grid(study: Study, out: Path, jobs: list[RunJob], pack: bool = False) -> Grid:
    """The study as a grid of train runs (axes pe x seed) whose runs land where the study
    looks for them: ``OUT/runs/<task>-<pe>-s<seed>``; the grid directory is ``OUT``."""
    out = Path(os.path.abspath(out))
    command = ["train", study.task, "--train-lengths", study.train_lengths,
               *(["--steps", str(study.steps)] if study.steps is not None else []),
               *(["--device", study.device] if study.device != "auto" else []),
               *(arg for s in study.sets for arg in ("--set", s))]
    return Grid(name=out.name, command=command, axes={"pe": list(dict.fromkeys(j.pe for j in jobs)),
                                                      "seed": list(study.seeds)},
                out=out.parent, run_name=default_run_name(study.task, "{pe}", SEED), pack="seed" if pack else "",
                runs_subdir="runs")


class GridBackend:
    """Train the unfinished runs as a grid (:mod:`comp.grid`): one Slurm array (``kind="slurm"``,
    returns once submitted) or local worker processes (``kind="local"``, returns when they end)."""

    def __init__(self, kind: str, quiet: bool = False, max_parallel: "int | None" = None,
                 slurm: "dict | None" = None, pack: bool = False):
        self.kind, self.quiet, self.max_parallel, self.slurm, self.pack = kind, quiet, max_parallel, slurm or {}, pack

    def run(self, study: Study, out: Path, jobs: list[RunJob]) -> list[RunJob]:
        if self.pack:
            for job in jobs:
                check_packable(job.config)
        grid = study_grid(study, out, jobs, self.pack)

        def report(runs: str, rc: int, seconds: float) -> None:
            if not self.quiet:
                say(f"  {runs}: {'done' if rc == 0 else f'exit {rc}'} ({seconds:.0f}s)")

        result = launch(grid, backend=self.kind, max_parallel=self.max_parallel, slurm=self.slurm, on_exit=report)
        unfinished = [j for j in jobs if j.status != "finished"]
        if not unfinished:
            return []
        active = sum(result.states[i] in ACTIVE for i in result.states)
        if result.job_id:
            say(f"submitted Slurm job {result.job_id}: {len(result.todo)} runs of study {grid.name} in "
                f"{len(result.tasks)} array tasks" + (f" ({active} more still queued or running)" if active else ""))
        elif active:
            say(f"{active} runs of study {grid.name} are still queued or running")
        if self.kind == "slurm":
            say(f"follow with: comp grid status {grid.dir.root}; once they are done, run this same comp lengthgen "
                "command again: finished runs are reused, so it only evaluates them and writes the report")
        else:
            say(f"{len(unfinished)} runs did not finish; see comp grid status {grid.dir.root}")
        return unfinished


def slurm_backend(quiet: bool = False, max_parallel: "int | None" = None, slurm: "dict | None" = None,
                  pack: bool = False) -> GridBackend:
    return GridBackend("slurm", quiet, max_parallel, slurm, pack)


def local_backend(quiet: bool = False, max_parallel: "int | None" = None, pack: bool = False) -> GridBackend:
    return GridBackend("local", quiet, max_parallel, None, pack)


BACKENDS: dict[str, Callable[..., Backend]] = {"inline": InlineBackend, "local": local_backend, "slurm": slurm_backend}
RENAMED = {"grid-local": "local"}  # old name -> its name now (lengthgen's old "local" is "inline")
OPTION_NAMES = {"max_parallel": "--max-parallel", "slurm": "Slurm options (--partition, --time, --sbatch ...)",
                "pack": "--pack-seeds"}


def get_backend(name: str, **options) -> Backend:
    """The backend ``name`` with ``options``; an option it does not take (given, not empty) is an error."""
    if name in RENAMED:
        say(f"note: --backend {name} is now called --backend {RENAMED[name]}; the old name still works")
        name = RENAMED[name]
    if name not in BACKENDS:
        raise CompError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    given = {k: v for k, v in options.items() if v not in (None, False, {}, [])}
    takes = inspect.signature(BACKENDS[name]).parameters
    wrong = [OPTION_NAMES.get(k, k) for k in given if k not in takes]
    if wrong:
        users = [b for b, f in BACKENDS.items() if all(k in inspect.signature(f).parameters for k in given)]
        raise CompError(f"{' and '.join(wrong)} do not apply to --backend {name}"
                        + (f"; use --backend {' or '.join(users)}" if users else ""))
    return BACKENDS[name](**given)
