"""``comp collect GRID``: one table of every run's axes, state and final metrics.

``{"grid", "path", "axes", "rows": [{"run", "state", ...axes, ...metrics}]}`` where the metrics
of a finished train run are its ``eval.json`` scalars (step, stop_reason, elapsed), its
``final_loss``, and accuracy by length as columns ``acc_generate_L8``, ``acc_cot_L8``, ...
plus ``mean_acc_generate`` and ``min_acc_generate``; ready for the length-generalization
report and plots (one row per run, one column per metric and length).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from comp.grid.backends import queue_of
from comp.grid.bases import base_for
from comp.grid.spec import open_grid
from comp.grid.status import run_state
from comp.io import write_text


def collect(spec: "str | Path") -> dict:
    """Results of the grid given by file, directory or name."""
    grid, lines = open_grid(spec)
    queue = queue_of(grid)
    rows = []
    for line in lines:
        state = run_state(grid, line, queue)
        metrics = base_for(line.argv).results(Path(line.run_dir)) if state == "done" else {}
        rows.append({"run": line.run, "state": state, **line.axes, **metrics})
    return {"grid": grid.name, "path": str(grid.root), "axes": list(lines[0].axes) if lines else [], "rows": rows}


def columns(rows: list[dict]) -> list[str]:
    """Every key of ``rows``, in first-seen order."""
    return list(dict.fromkeys(k for r in rows for k in r))


def write_csv(rows: list[dict], path: "str | Path") -> None:
    """The rows as CSV (one column per key; empty where a run lacks it), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
