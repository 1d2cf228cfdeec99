"""``comp grid``: run a grid of runs on Slurm or locally, and see where it stands;
``comp collect``: one table of results.

    comp grid GRID.yaml [--backend slurm|local] [--dry-run] [--max-parallel N] [--partition P ...]
    comp grid status GRID [--json PATH]
    comp collect GRID [--json PATH] [--csv PATH]

``comp grid GRID.yaml`` is short for ``comp grid run GRID.yaml``. GRID is a grid file, a
grid directory (``runs/<name>``) or a grid name under the runs directory.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.panel import Panel
from typer.core import TyperGroup

from comp.cli.argv import check_command_lines
from comp.cli.common import check_output_path, stderr, user_errors, write_outputs
from comp.cli.options import JSON, MaxParallel, slurm_options
from comp.errors import CompError
from comp.grid.backends import grid_jobs
from comp.grid.bases import seeds_text
from comp.grid.collect import collect, write_csv
from comp.grid.launch import launch
from comp.grid.layout import GridDir
from comp.grid.status import grid_status
from comp.views.tables import console, print_table


class RunByDefault(TyperGroup):
    """``comp grid FILE`` means ``comp grid run FILE``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=RunByDefault,
    no_args_is_help=True,
    help="Grids of runs (axes such as pe x seed x n_layers) on Slurm or local worker processes. "
    "`comp grid GRID.yaml` is short for `comp grid run GRID.yaml`.",
)


@app.command("run")
@slurm_options
def run_cli(
    grid_file: Path = typer.Argument(..., help="Grid file (YAML or JSON): command, axes, slurm options."),
    backend: str | None = typer.Option(None, help="slurm or local (default: the file's backend, else slurm)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the manifest and job script; write and submit nothing."),
    max_parallel: MaxParallel = None,
    slurm: dict | None = None,
) -> None:
    """Expand GRID_FILE into runs and submit the ones not done yet (a Slurm array) or run them locally."""
    _run(grid_file, backend, dry_run, max_parallel, slurm or {})


@user_errors
def _run(grid_file: Path, backend, dry_run: bool, max_parallel, overrides: dict) -> None:
    def report(runs: str, rc: int, seconds: float) -> None:
        stderr(f"  {runs}: {'done' if rc == 0 else f'exit {rc}'} ({seconds:.0f}s)")

    if backend == "":
        raise CompError("--backend is empty; give slurm or local, or leave it out for the grid file's")
    result = launch(grid_file, backend=backend, max_parallel=max_parallel, slurm=overrides, dry_run=dry_run,
                    on_exit=report, check_lines=check_command_lines)
    grid, todo = result.grid, set(result.todo)
    if result.change:
        stderr(f"grid {grid.name} changed since it was submitted: {result.change.explain()}")
    skipped = {s: sum(1 for i, st in result.states.items() if st == s and i not in todo) for s in ("done", "pending", "running")}
    skip_text = ", ".join(f"{n} {s}" for s, n in skipped.items() if n)
    packed = any(x.pack for x in result.lines)
    in_tasks = f" in {len(result.tasks)} tasks" if packed else ""
    if dry_run:
        print_table(
            [{"index": x.index, "task": x.task, "run": x.run, **x.axes,
              "action": "run" if x.index in todo else f"skip ({result.states[x.index]})"} for x in result.lines],
            ["index", *(["task"] if packed else []), "run", *result.lines[0].axes, "action"],
            title=f"grid {grid.name}: {len(result.lines)} runs{in_tasks} (dry run)",
        )
        first = [x for x in result.lines if x.task == result.lines[0].task]
        shown = [*first[0].pack["argv"], "--seeds", seeds_text(first)] if packed else first[0].argv
        print(f"task {first[0].task}: comp {shlex.join(shown)}")
        if result.script:
            print(f"\njob script ({grid.script}):\n{result.script}", end="")
        return
    if not todo:
        print(f"grid {grid.name}: nothing to do ({skip_text}); see comp grid status {grid.root}")
        return
    if result.backend == "slurm":
        print(f"grid {grid.name}: submitted Slurm job {result.job_id} with {len(todo)} runs{in_tasks}"
              + (f" (skipped {skip_text})" if skip_text else "") + f"; follow with: comp grid status {grid.root}")
        return
    _show_status(grid_status(grid.root))
    failed = sum(rc != 0 for rc in result.exit_codes.values())
    if failed:
        stderr(f"{failed} of {len(result.tasks)} {'tasks' if packed else 'runs'} did not finish; see the log tails above")
        raise typer.Exit(1)


def _show_status(status: dict) -> None:
    rows = status["rows"]
    counts = ", ".join(f"{n} {s}" for s, n in status["counts"].items())
    print_table(rows, ["run", "state", *status["axes"], "job", "attempt"], title=f"grid {status['grid']}: {counts}")
    for row in rows:
        if row["state"] == "failed":
            console.print(Panel("\n".join(row.get("log_tail") or ["(no log)"]), title=f"{row['run']}: log tail"),
                          markup=False)


@app.command("status")
def status_cli(
    grid: str = typer.Argument(..., help="Grid file, grid directory, or grid name under the runs directory."),
    tail: int = typer.Option(10, help="Log lines shown for each failed run."),
    json_path: Path | None = JSON,
) -> None:
    """Each run's state: new, pending, running, done, interrupted, or failed (with its log tail)."""
    _status(grid, tail, json_path)


@user_errors
def _status(grid: str, tail: int, json_path: Path | None) -> None:
    check_output_path(json_path, (".json",))
    status = grid_status(grid, tail)
    _show_status(status)
    jobs = grid_jobs(GridDir(status["path"]))
    if jobs:
        stderr(f"slurm jobs: {', '.join(jobs)}")
    write_outputs(status, json_path)


def collect_cli(
    grid: str = typer.Argument(..., help="Grid file, grid directory, or grid name under the runs directory."),
    json_path: Path | None = typer.Option(None, "--json", help="Write {\"rows\": [...]} here."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write the rows as CSV here."),
) -> None:
    """One row per run of a grid: axes, state, final metrics and accuracy by length."""
    _collect(grid, json_path, csv_path)


@user_errors
def _collect(grid: str, json_path: Path | None, csv_path: Path | None) -> None:
    check_output_path(json_path, (".json",))
    check_output_path(csv_path, (".csv",))
    result = collect(grid)
    rows = result["rows"]
    shown = [c for c in ["step", "final_loss", "mean_acc_generate", "min_acc_generate"] if any(c in r for r in rows)]
    print_table(rows, ["run", "state", *result["axes"], *shown], title=f"grid {result['grid']}: {len(rows)} runs")
    for row in rows:
        if row["state"] == "corrupt":
            stderr(f"{row['run']}: corrupt, not collected: {row['problem']}")
    write_outputs(result, json_path)
    if csv_path is not None:
        write_csv(rows, csv_path)
        stderr(f"wrote {csv_path}")
