"""``comp grid GRID.yaml``: expand a grid, skip what is done or queued, and run the rest.

Nothing is written before every run's command line has been checked (``check_lines``:
``comp grid`` parses them with the comp CLI), so a typo in an axis fails at once, not in
a hundred jobs. Resubmitting is idempotent:
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
from comp.grid.changes import GridChange, check_grid_change
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
    change: GridChange = field(default_factory=GridChange)  # how the file differs from the last submission


def launch(
    grid: "Grid | str | Path",
    *,
    backend: "str | None" = None,
    max_parallel: "int | None" = None,
    slurm: "dict[str, Any] | None" = None,
    dry_run: bool = False,
    on_exit: Callable[[str, int, float], None] = lambda run, rc, seconds: None,
    check_lines: Callable[[list[RunLine]], None] = lambda lines: None,
) -> Launch:
    """Run a grid (a :class:`~comp.grid.spec.Grid`, or the grid file at that path). ``backend``,
    ``max_parallel`` and ``slurm`` options override the grid's; ``on_exit(runs, rc, seconds)``
    reports each finished local task; ``check_lines(lines)`` checks every run's command line
    before anything is written (``comp grid`` passes :func:`comp.cli.argv.check_command_lines`)."""
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
    check_lines(lines)

    gdir = grid.dir
    queue = queue_of(gdir) if gdir.exists() else {}
    if gdir.exists() and queue and gdir.read_manifest() != lines:
        raise CompError(f"grid {grid.name} changed since its jobs were submitted and some are still queued "
                        f"(tasks {sorted(queue)}); wait for them or scancel them, or give the grid a new name")
    change = check_grid_change(gdir, lines)  # axes added or removed, runs changed under their name: refused
    states = {x.index: run_state(gdir, x, queue) for x in lines}
    todo = [i for i, s in states.items() if s != "done" and s not in ACTIVE]
    result = Launch(gdir, backend, lines, states, todo, array_tasks([lines[i] for i in todo]), change=change)
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
