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
import json
from pathlib import Path

from comp.errors import CompError
from comp.grid.backends import queue_of
from comp.grid.bases import base_for
from comp.grid.spec import open_grid
from comp.grid.status import run_state
from comp.io import write_text
from comp.runs.files import MODEL_FILE


def collect(spec: "str | Path") -> dict:
    """Results of the grid given by file, directory or name. A run whose files cannot be read
    (truncated, half-copied, foreign) is a row in state ``corrupt`` with its ``problem``; the
    other runs are collected as usual."""
    grid, lines = open_grid(spec)
    queue = queue_of(grid)
    rows = []
    for line in lines:
        try:
            state = run_state(grid, line, queue)
            metrics = finished_results(line) if state == "done" else {}
        except (CompError, OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            state, metrics = "corrupt", {"problem": " ".join(str(e).split()) or type(e).__name__}
        rows.append({"run": line.run, "state": state, **line.axes, **metrics})
    return {"grid": grid.name, "path": str(grid.root), "axes": list(lines[0].axes) if lines else [], "rows": rows}


def finished_results(line) -> dict:
    """The metrics of a finished run, after checking that its weights file is whole."""
    run_dir = Path(line.run_dir)
    model = run_dir / MODEL_FILE
    if model.exists():
        check_safetensors(model)
    return base_for(line.argv).results(run_dir)


def check_safetensors(path: Path) -> None:
    """Raise :class:`CompError` unless ``path`` holds a whole safetensors file (its header
    parses and every tensor's bytes are there), read without torch."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise CompError(f"{path} is truncated ({size} bytes, no complete header); train the run again")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CompError(f"{path} has a corrupt header; train the run again") from None
    end = max([v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"] or [0])
    if 8 + n + end > size:
        raise CompError(f"{path} is truncated ({size} of {8 + n + end} bytes); train the run again")


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
