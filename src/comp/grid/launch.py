"""``comp grid GRID.yaml``: expand a grid, skip what is done or queued, and run the rest.

Nothing is written before every run's command line has been parsed by the comp CLI,
so a typo in an axis fails at once, not in a hundred jobs. Resubmitting is idempotent:
done, pending and running runs are skipped; failed and interrupted ones run again
(interrupted train runs resume from their checkpoint).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comp.errors import CompError
from comp.grid.backends import job_script, queue_of, run_local, submit_slurm
from comp.grid.layout import GridDir, RunLine
from comp.grid.sbatch import check_slurm_options
from comp.grid.spec import BACKENDS, expand, load_grid
from comp.grid.status import ACTIVE, run_state


@dataclass
class Launch:
    """What :func:`launch` did (or, with ``dry_run``, would do)."""

    grid: GridDir
    backend: str
    lines: list[RunLine]
    states: dict[int, str]  # manifest index -> state before launching
    todo: list[int]  # indices run or submitted now
    script: "str | None" = None  # the Slurm job script
    job_id: "str | None" = None  # the Slurm job id
    exit_codes: dict[int, int] = field(default_factory=dict)  # local backend: index -> exit status


def check_command_lines(lines: list[RunLine]) -> None:
    """Parse each run's command line with the comp CLI (without running it)."""
    import click
    from typer.main import get_command

    from comp.cli.main import app

    commands = get_command(app).commands
    for line in lines:
        name, *args = line.argv
        if name not in commands or name == "grid":
            raise CompError(f"unknown base command {name!r}; choose one of: {', '.join(c for c in commands if c != 'grid')}")
        try:
            commands[name].make_context(f"comp {name}", list(args))
        except click.ClickException as e:
            raise CompError(f"run {line.run}: comp {name} would reject its arguments: {e.format_message()}") from None


def launch(
    path: "str | Path",
    *,
    backend: "str | None" = None,
    max_parallel: "int | None" = None,
    slurm: "dict[str, Any] | None" = None,
    dry_run: bool = False,
    on_exit: Callable[[str, int, float], None] = lambda run, rc, seconds: None,
) -> Launch:
    """Run the grid in ``path``. ``backend``, ``max_parallel`` and ``slurm`` options
    override the file's; ``on_exit(run, rc, seconds)`` reports each finished local run."""
    grid = load_grid(path)
    backend = backend or grid.backend
    if backend not in BACKENDS:
        raise CompError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    parallel = grid.max_parallel if max_parallel is None else max_parallel
    if parallel < 0:
        raise CompError(f"--max-parallel must be >= 0, got {parallel}")
    flags = dict(slurm or {})
    extra = [*grid.slurm.get("extra", []), *flags.pop("extra", [])]  # --sbatch lines add to the file's
    options = check_slurm_options({**grid.slurm, **flags, **({"extra": extra} if extra else {})})
    lines = expand(grid)
    check_command_lines(lines)

    gdir = grid.dir
    queue = queue_of(gdir) if gdir.exists() else {}
    if gdir.exists() and queue and gdir.read_manifest() != lines:
        raise CompError(f"grid {grid.name} changed since its jobs were submitted and some are still queued "
                        f"(tasks {sorted(queue)}); wait for them or scancel them, or give the grid a new name")
    states = {x.index: run_state(gdir, x, queue) for x in lines}
    todo = [i for i, s in states.items() if s != "done" and s not in ACTIVE]
    result = Launch(gdir, backend, lines, states, todo)
    if backend == "slurm" and todo:
        result.script = job_script(gdir, todo, parallel, options)
    if dry_run or not todo:
        return result
    gdir.write_manifest(lines)
    if backend == "slurm":
        result.job_id = submit_slurm(gdir, result.script, todo)
    else:
        result.exit_codes = run_local(gdir, todo, parallel or os.cpu_count() or 1, on_exit)
    return result
