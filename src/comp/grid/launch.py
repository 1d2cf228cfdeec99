"""``comp grid GRID.yaml``: expand a grid, skip what is done or queued, and run the rest.

Nothing is written before every run's command line has been parsed by the comp CLI,
so a typo in an axis fails at once, not in a hundred jobs. Resubmitting is idempotent:
done, pending and running runs are skipped; failed and interrupted ones run again
(interrupted train runs resume from their checkpoint). The array runs tasks, not lines:
with ``pack: seed`` one task trains the unfinished seeds of a pack together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comp.errors import CompError
from comp.grid.backends import check_sbatch, job_script, queue_of, run_local, submit_slurm
from comp.grid.layout import GridDir, RunLine, array_tasks
from comp.grid.sbatch import check_slurm_options
from comp.grid.spec import BACKENDS, Grid, expand, load_grid
from comp.grid.status import ACTIVE, run_state


@dataclass
class Launch:
    """What :func:`launch` did (or, with ``dry_run``, would do)."""

    grid: GridDir
    backend: str
    lines: list[RunLine]
    states: dict[int, str]  # manifest index -> state before launching
    todo: list[int]  # indices run or submitted now
    tasks: list[int] = field(default_factory=list)  # the array tasks that run them (a pack of seeds is one task)
    script: "str | None" = None  # the Slurm job script
    job_id: "str | None" = None  # the Slurm job id
    exit_codes: dict[int, int] = field(default_factory=dict)  # local backend: task -> exit status


def check_command_lines(lines: list[RunLine]) -> None:
    """Parse each run's command line (and each pack's, with its seeds) with the comp CLI, without running it."""
    import click
    from typer.main import get_command

    from comp.cli.main import app

    commands = get_command(app).commands
    packs = {x.task: [*x.pack["argv"], "--seeds", str(x.axes["seed"])] for x in lines if x.pack}
    for run, argv in [*((x.run, x.argv) for x in lines), *((f"task {t}", a) for t, a in packs.items())]:
        name, *args = argv
        if name not in commands or name == "grid":
            raise CompError(f"unknown base command {name!r}; choose one of: {', '.join(c for c in commands if c != 'grid')}")
        try:
            ctx = commands[name].make_context(f"comp {name}", list(args))
        except click.ClickException as e:
            raise CompError(f"run {run}: comp {name} would reject its arguments: {e.format_message()}") from None
        if run.startswith("task ") and name == "train":  # a pack: its seeds train stacked
            _check_pack(ctx.params)


def _check_pack(params: dict) -> None:
    """Refuse a pack whose settings the stacked training cannot do (before anything is written)."""
    from comp.cli.train import apply_sets
    from comp.config import load_config_file
    from comp.train.multiseed import check_packable

    data = load_config_file(params["config"]) if params.get("config") else {}
    apply_sets(data, list(params.get("set_") or []))
    try:
        jitter = float(data.get("model", {}).get("attn_jitter", 0) or 0)
    except (TypeError, ValueError):
        return  # an invalid value: comp train reports it
    check_packable(jitter)


def launch(
    grid: "Grid | str | Path",
    *,
    backend: "str | None" = None,
    max_parallel: "int | None" = None,
    slurm: "dict[str, Any] | None" = None,
    dry_run: bool = False,
    on_exit: Callable[[str, int, float], None] = lambda run, rc, seconds: None,
) -> Launch:
    """Run a grid (a :class:`~comp.grid.spec.Grid`, or the grid file at that path). ``backend``,
    ``max_parallel`` and ``slurm`` options override the grid's; ``on_exit(runs, rc, seconds)``
    reports each finished local task."""
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    backend = backend or grid.backend
    if backend not in BACKENDS:
        raise CompError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    parallel = grid.max_parallel if max_parallel is None else max_parallel
    if parallel < 0:
        raise CompError(f"--max-parallel must be >= 0, got {parallel}")
    flags = dict(slurm or {})
    lists = {k: [*grid.slurm.get(k, []), *flags.pop(k, [])] for k in ("extra", "setup")}  # --sbatch, --setup add
    options = check_slurm_options({**grid.slurm, **flags, **{k: v for k, v in lists.items() if v}})
    lines = expand(grid)
    check_command_lines(lines)

    gdir = grid.dir
    queue = queue_of(gdir) if gdir.exists() else {}
    if gdir.exists() and queue and gdir.read_manifest() != lines:
        raise CompError(f"grid {grid.name} changed since its jobs were submitted and some are still queued "
                        f"(tasks {sorted(queue)}); wait for them or scancel them, or give the grid a new name")
    states = {x.index: run_state(gdir, x, queue) for x in lines}
    todo = [i for i, s in states.items() if s != "done" and s not in ACTIVE]
    result = Launch(gdir, backend, lines, states, todo, array_tasks([lines[i] for i in todo]))
    if backend == "slurm" and todo:
        result.script = job_script(gdir, result.tasks, parallel, options)
    if dry_run or not todo:
        return result
    if backend == "slurm":
        check_sbatch()  # before anything is written
    gdir.write_manifest(lines)
    if backend == "slurm":
        result.job_id = submit_slurm(gdir, result.script, result.tasks)
    else:
        result.exit_codes = run_local(gdir, result.tasks, parallel or os.cpu_count() or 1, on_exit)
    return result
