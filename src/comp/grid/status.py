"""The state of each run of a grid, from its files, its run record and the Slurm queue.

States: ``new`` (never started), ``pending`` (queued), ``running``, ``done``,
``interrupted`` (stopped with a checkpoint; resubmitting continues it) and ``failed``
(non-zero exit, or the process vanished without a word: killed, out of memory, time
limit); failed rows carry the tail of the run's log.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from comp.grid.backends import queue_of
from comp.grid.bases import base_for
from comp.grid.layout import GridDir, RunLine
from comp.grid.spec import open_grid

STATES = ("new", "pending", "running", "done", "interrupted", "failed")
ACTIVE = ("pending", "running")
RUNNING_CODES = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SUSPENDED")


def is_done(grid: GridDir, line: RunLine) -> bool:
    """Finished: its results file exists, or the task runner saw it exit 0."""
    return base_for(line.argv).finished(Path(line.run_dir)) or grid.record(line.run).get("state") == "done"


def _alive(record: dict, queue: "dict[int, str] | None") -> bool:
    """Whether the process a ``running`` record names still runs."""
    if record.get("job") == "local" or queue is None:
        if record.get("host") != socket.gethostname():
            return True  # another machine, no queue to ask: trust the record
        try:
            os.kill(int(record["pid"]), 0)
            return True
        except (OSError, KeyError, ValueError):
            return False
    return False  # a Slurm task that is not in the queue any more


def run_state(grid: GridDir, line: RunLine, queue: "dict[int, str] | None") -> str:
    """One of :data:`STATES`. ``queue`` maps array task ids of this grid's live jobs to Slurm
    states (``None``: Slurm could not be asked)."""
    if is_done(grid, line):
        return "done"
    if queue and line.task in queue:
        return "running" if queue[line.task] in RUNNING_CODES else "pending"
    record = grid.record(line.run)
    state = record.get("state")
    if state is None:
        return "new"
    if state == "running":
        return "running" if _alive(record, queue) else "failed"
    if state == "requeued":
        return "pending" if queue is None else "interrupted"
    return state


def status_rows(grid: GridDir, lines: list[RunLine], queue: "dict[int, str] | None", tail: int = 10) -> list[dict]:
    """``[{"run", "state", ...axes, "job", "attempt", "rc", "log_tail"?}]`` in manifest order."""
    rows = []
    for line in lines:
        record = grid.record(line.run)
        row = {"run": line.run, "state": run_state(grid, line, queue), **line.axes,
               "job": record.get("job"), "attempt": record.get("attempt"), "rc": record.get("rc")}
        if row["state"] == "failed":
            row["log_tail"] = grid.log_tail(line.run, tail)
        rows.append(row)
    return rows


def grid_status(spec: "str | Path", tail: int = 10) -> dict:
    """``{"grid", "path", "axes", "counts": {state: n}, "rows": [...]}`` for a grid given by file, directory or name."""
    grid, lines = open_grid(spec)
    rows = status_rows(grid, lines, queue_of(grid), tail)
    counts = {s: sum(r["state"] == s for r in rows) for s in STATES}
    return {"grid": grid.name, "path": str(grid.root), "axes": list(lines[0].axes) if lines else [], "counts": {s: n for s, n in counts.items() if n}, "rows": rows}
