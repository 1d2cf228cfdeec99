"""How a grid drives its base command: ``BASES`` maps a comp command to a :class:`Base`.

Any comp command line can be a grid's base. The generic :class:`Base` only fills the
placeholders (``{run}``, ``{run_dir}``, ``{grid}``, ``{grid_dir}``, ``{<axis>}``) and
counts a run as done once its ``result.json`` exists (write it with
``--json {run_dir}/result.json``) or the task runner saw it exit 0. :class:`TrainBase`
also names the run and its directory, sets the wandb group, resumes from the last
checkpoint after an interruption (the run states of :mod:`comp.runs.files`, shared with
``comp train`` and ``comp lengthgen``), is done once the run is finished, and trains a
pack of seeds together (``comp train --seeds``).
"""

from __future__ import annotations

import json
from pathlib import Path

from comp.errors import CompError
from comp.grid.layout import RunLine
from comp.runs.files import EVAL_FILE, METRICS_FILE, clear_unstarted, run_status


class Base:
    """Any comp command: placeholders only; its results are ``result.json`` in the run directory."""

    results_file = "result.json"
    packs_seeds = False  # whether lines that differ only in seed can share a task (grid files' pack: seed)

    def grid_args(self, run: str, run_dir: Path, grid: str, wandb: bool) -> list[str]:
        """Arguments appended to every run's command line."""
        return []

    def check(self, argv: list[str]) -> None:
        """Refuse base command lines (and axis flags) that would fight the grid."""

    def commands(self, lines: list[RunLine]) -> list[list[str]]:
        """The command lines that bring the (unfinished) runs of one task to the end now,
        run one after another: a fresh start, or a continuation."""
        return [list(x.argv) for x in lines]

    def finished(self, run_dir: Path) -> bool:
        return (run_dir / self.results_file).exists()

    def results(self, run_dir: Path) -> dict:
        """Flat metrics of a finished run (``{}`` if it has none)."""
        path = run_dir / self.results_file
        return flatten_results(json.loads(path.read_text())) if path.exists() else {}


class TrainBase(Base):
    """``comp train``: one run directory per line, resumed from its checkpoint after a stop;
    a pack of seeds trains with ``comp train --seeds`` (one run directory per seed)."""

    results_file = EVAL_FILE
    packs_seeds = True
    OWNED = {"--name": "", "--out": "", "--resume": "", "--wandb-group": "",
             "--seeds": " (to train seeds together, give a seed axis and pack: seed)"}

    def grid_args(self, run: str, run_dir: Path, grid: str, wandb: bool) -> list[str]:
        return ["--name", run, "--out", str(run_dir.parent), "--quiet", "--wandb-group", grid, *(["--wandb"] if wandb else [])]

    def check(self, argv: list[str]) -> None:
        for arg in argv:
            flag = arg.split("=", 1)[0]
            if flag in self.OWNED:
                raise CompError(f"the grid sets {flag} of every train run itself; remove it from the command and "
                                f"axes{self.OWNED[flag]}")

    def commands(self, lines: list[RunLine]) -> list[list[str]]:
        """Unfinished runs resume from their checkpoints (``--resume``) and the others start
        afresh (a run killed before its first checkpoint is cleared first). A pack resumes
        its interrupted seeds together, then starts its new ones together."""
        status = {x.run: run_status(x.run_dir) for x in lines}
        for x in lines:
            if status[x.run] == "stale":
                clear_unstarted(x.run_dir)
        todo = [x for x in lines if status[x.run] != "finished"]
        resume = [x for x in todo if status[x.run] == "interrupted"]
        fresh = [x for x in todo if status[x.run] != "interrupted"]
        pack = lines[0].pack
        if pack is None:
            return [*(["train", "--resume", x.run_dir, "--quiet"] for x in resume), *(list(x.argv) for x in fresh)]
        cmds = [["train", "--resume", pack["run_dir"], "--seeds", seeds_text(resume), "--quiet"]] if resume else []
        return cmds + ([[*pack["argv"], "--seeds", seeds_text(fresh)]] if fresh else [])

    def finished(self, run_dir: Path) -> bool:
        return run_status(run_dir) == "finished"

    def results(self, run_dir: Path) -> dict:
        out = super().results(run_dir)
        metrics = run_dir / METRICS_FILE
        if out and metrics.exists():
            losses = [r["loss"] for r in map(json.loads, metrics.read_text().splitlines()) if "loss" in r]
            out["final_loss"] = losses[-1] if losses else None
        return out


def seeds_text(lines: list[RunLine]) -> str:
    """``--seeds`` of packed lines: ``0,1,2``."""
    return ",".join(str(x.axes["seed"]) for x in lines)


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
