"""What ``comp train`` is asked, as one typed value, and how it becomes runs.

    request = TrainRequest(task="parity", settings={"encoding": "rotary"}, seeds="0-3")
    plan = plan_training(request)       # config and run directories, checked; nothing written
    results = run_training(plan)        # train (or resume) them: one run, or seeds together

A request is a new run (``task`` and its settings: defaults < ``config_file`` <
``settings`` < ``sets``, :func:`comp.config.build_config`) or a ``resume`` of an existing
one; one seed (:func:`comp.train.train`) or several trained together (``seeds``,
:func:`comp.train.multiseed.train_seeds`). Run directories are named by
:mod:`comp.runs.names`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comp.config import RunConfig, build_config
from comp.errors import CompError
from comp.runs.load import resume_config
from comp.runs.names import SEED, parse_seeds, run_dirs, runs_dir, seed_run_dir
from comp.tasks import TASKS
from comp.train.loop import TrainResult, train
from comp.train.multiseed import resume_seeds, train_seeds


@dataclass
class TrainRequest:
    """One ``comp train`` command."""

    task: str | None = None  # a key of comp.tasks.TASKS or "multi" (a new run)
    settings: dict[str, Any] = field(default_factory=dict)  # setting name -> value (None: not given)
    config_file: Path | None = None  # JSON/YAML with task/model/train sections
    sets: list[str] = field(default_factory=list)  # section.key=value overrides, applied last
    seed: int | None = None  # one run's seed (default: the config's)
    seeds: str | None = None  # several seeds trained together, e.g. "0-31"
    steps: int | None = None  # optimizer steps (also extends a resume)
    device: str | None = None  # also for a resume
    name: str | None = None  # run name; with seeds, {seed} marks the seed's place (else -s<seed> is added)
    out: Path | None = None  # runs directory (default: comp.runs.names.runs_dir())
    resume: Path | None = None  # continue this run (with seeds: its seed siblings, or {seed} filled)
    preset: str | None = None  # a key of comp.presets.PRESETS, under every other setting

    def config(self) -> RunConfig:
        """The config of a new run."""
        if self.task is None:
            raise CompError(f"missing TASK; e.g. comp train parity (tasks: {', '.join([*TASKS, 'multi'])})")
        options = {**self.settings, "seed": self.seed, "steps": self.steps, "device": self.device}
        return build_config(self.task, self.config_file, self.sets, preset=self.preset, **options)


@dataclass
class TrainPlan:
    """The runs a request trains: one config, one directory per seed."""

    request: TrainRequest
    config: RunConfig
    run_dirs: list[Path]
    seeds: list[int] | None  # None: one run; else the seeds trained together

    def resume_command(self) -> str:
        """The ``comp train`` arguments that continue these runs after an interruption."""
        r = self.request
        several = self.seeds is not None
        where = r.resume or ((r.out or runs_dir()) / r.name if several and r.name and SEED in r.name else self.run_dirs[0])
        return f"--resume {shlex.quote(str(where))}" + (f" --seeds {r.seeds}" if several else "")


def plan_training(request: TrainRequest) -> TrainPlan:
    """The config and run directories of a request, checked (nothing is written)."""
    seeds = parse_seeds(request.seeds) if request.seeds is not None else None
    if seeds is not None and request.seed is not None:
        raise CompError("give either --seed N (one run) or --seeds 0-31 (several), not both")
    if request.resume is not None:
        if seeds is not None:
            dirs = [seed_run_dir(Path(request.resume), s) for s in seeds]
            cfg, seeds = resume_seeds(dirs, request.steps)
        else:
            cfg = resume_config(Path(request.resume), request.steps)
            dirs = [Path(request.resume)]
        if request.device is not None:
            cfg.train.device = request.device
        return TrainPlan(request, cfg, dirs, seeds)
    cfg = request.config()
    dirs = run_dirs(request.out or runs_dir(), cfg.task.name, cfg.model.encoding, seeds or [cfg.train.seed],
                    request.name, several=seeds is not None)
    return TrainPlan(request, cfg, dirs, seeds)


def run_training(plan: TrainPlan, quiet: bool = False,
                 should_stop: Callable[[], bool] = lambda: False) -> list[TrainResult]:
    """Train (or resume) the runs of a plan; one result per run directory."""
    resume = plan.request.resume is not None
    if plan.seeds is not None:
        return train_seeds(plan.config, plan.seeds, plan.run_dirs, resume=resume, quiet=quiet, should_stop=should_stop)
    return [train(plan.config, plan.run_dirs[0], resume=resume, quiet=quiet, should_stop=should_stop)]


def seed_summary(result: TrainResult) -> dict:
    """One line of the multi-seed table: where a run stopped and its final accuracy."""
    accs = [row["acc_generate"] for row in result.eval_rows]
    return {
        "run": result.run_dir.name,
        "step": result.state.step,
        "stop": result.state.stop_reason or "interrupted",
        "min_acc_generate": min(accs) if accs else None,
        "mean_acc_generate": sum(accs) / len(accs) if accs else None,
    }
