"""How a grid drives its base command: ``BASES`` maps a comp command to a :class:`Base`.

Any comp command line can be a grid's base. The generic :class:`Base` only fills the
placeholders (``{run}``, ``{run_dir}``, ``{grid}``, ``{grid_dir}``, ``{<axis>}``) and
counts a run as done once its ``result.json`` exists (write it with
``--json {run_dir}/result.json``) or the task runner saw it exit 0. :class:`TrainBase`
also names the run and its directory, sets the wandb group, resumes from the last
checkpoint after an interruption, and is done once ``eval.json`` exists.
"""

from __future__ import annotations

import json
from pathlib import Path

from comp.errors import CompError
from comp.grid.layout import RunLine


class Base:
    """Any comp command: placeholders only; its results are ``result.json`` in the run directory."""

    results_file = "result.json"

    def grid_args(self, run: str, run_dir: Path, grid: str, wandb: bool) -> list[str]:
        """Arguments appended to every run's command line."""
        return []

    def check(self, argv: list[str]) -> None:
        """Refuse base command lines that would fight the grid."""

    def command(self, line: RunLine) -> list[str]:
        """The command line to run now: a fresh start, or a continuation."""
        return list(line.argv)

    def finished(self, run_dir: Path) -> bool:
        return (run_dir / self.results_file).exists()

    def results(self, run_dir: Path) -> dict:
        """Flat metrics of a finished run (``{}`` if it has none)."""
        path = run_dir / self.results_file
        return flatten_results(json.loads(path.read_text())) if path.exists() else {}


class TrainBase(Base):
    """``comp train``: one run directory per line, resumed from its checkpoint after a stop."""

    results_file = "eval.json"
    STATE_FILE = "training_state.safetensors"  # == comp.train.state.STATE_FILE (tested; not imported: no torch here)
    OWNED = ("--name", "--out", "--resume", "--wandb-group")

    def grid_args(self, run: str, run_dir: Path, grid: str, wandb: bool) -> list[str]:
        return ["--name", run, "--out", str(run_dir.parent), "--quiet", "--wandb-group", grid, *(["--wandb"] if wandb else [])]

    def check(self, argv: list[str]) -> None:
        for arg in argv:
            if arg.split("=", 1)[0] in self.OWNED:
                raise CompError(f"the grid sets {arg.split('=', 1)[0]} of every train run itself; remove it from command")

    def command(self, line: RunLine) -> list[str]:
        run_dir = Path(line.run_dir)
        if (run_dir / self.STATE_FILE).exists():
            return ["train", "--resume", str(run_dir), "--quiet"]
        for name in ("config.json", "metrics.jsonl"):  # stopped before its first checkpoint: start over
            (run_dir / name).unlink(missing_ok=True)
        return list(line.argv)

    def results(self, run_dir: Path) -> dict:
        out = super().results(run_dir)
        metrics = run_dir / "metrics.jsonl"
        if out and metrics.exists():
            losses = [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if "loss" in r]
            out["final_loss"] = losses[-1] if losses else None
        return out


BASES: dict[str, Base] = {"train": TrainBase()}


def base_for(argv: list[str]) -> Base:
    """The :class:`Base` of a command line (the generic one for commands not in ``BASES``)."""
    return BASES.get(argv[0], Base()) if argv else Base()


def flatten_results(data: dict) -> dict:
    """Top-level scalars of a results file, plus its by-length rows as ``<metric>_L<length>``
    columns (prefixed by ``<task>.`` when rows cover several tasks), plus the mean and
    min of ``acc_generate`` over lengths."""
    out = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) and k not in ("run", "path")}
    rows = [r for r in data.get("rows", []) if isinstance(r, dict) and "length" in r]
    several = len({r.get("task") for r in rows}) > 1
    for r in rows:
        prefix = f"{r['task']}." if several else ""
        for key, value in r.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("length", "n"):
                out[f"{prefix}{key}_L{r['length']}"] = value
    accs = [r["acc_generate"] for r in rows if isinstance(r.get("acc_generate"), (int, float))]
    if accs:
        out["mean_acc_generate"] = sum(accs) / len(accs)
        out["min_acc_generate"] = min(accs)
    return out
