"""A grid's directory: its runs, and the state comp keeps about them under ``_grid/``.

    <out>/<grid>/                 one run directory per manifest line, named after its axes
    <out>/<grid>/_grid/
        manifest.jsonl            line i: {"index", "run", "run_dir", "axes", "argv", "task", "pack"};
                                  array task t runs the lines whose "task" is t (one line, or a pack of seeds)
        jobs.jsonl                one line per submission: {"backend", "job_id", "tasks", "time"}
        job.sbatch                the last job script submitted
        runs/<run>.json           what the task runner last saw: state, exit code, job, host, attempt
        logs/<run>.log            the run's output, appended across attempts (and slurm-<job>_<task>.out)

Everything is JSON written atomically; nothing here imports torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from comp.errors import CompError
from comp.io import read_json, write_json, write_text

STATE_DIR = "_grid"


def now() -> str:
    """The local time, as records and logs write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class RunLine:
    """One line of the manifest: one run of the grid."""

    index: int  # position in the manifest
    run: str  # run name, from the axis values
    run_dir: str  # absolute path of the run's directory
    axes: dict  # axis name -> value
    argv: list  # comp command line (without "comp") of a fresh start of this run alone
    task: int = -1  # the array task that runs it (-1: its index, one run per task)
    pack: "dict | None" = None  # packed seeds: {"argv": the group's command without --seeds, "run_dir": with {seed}}

    def __post_init__(self) -> None:
        if self.task < 0:
            object.__setattr__(self, "task", self.index)


def manifest_text(lines: list[RunLine]) -> str:
    """The manifest file's text: one JSON object per line."""
    return "".join(json.dumps(asdict(x)) + "\n" for x in lines)


def array_tasks(lines: list[RunLine]) -> list[int]:
    """The distinct array task ids of ``lines``, sorted."""
    return sorted({x.task for x in lines})


class GridDir:
    """Paths and records of one grid directory."""

    def __init__(self, root: "str | Path"):
        self.root = Path(root)
        self.state = self.root / STATE_DIR
        self.manifest = self.state / "manifest.jsonl"
        self.jobs_file = self.state / "jobs.jsonl"
        self.script = self.state / "job.sbatch"
        self.logs = self.state / "logs"

    @property
    def name(self) -> str:
        return self.root.name

    def exists(self) -> bool:
        return self.manifest.exists()

    def record_path(self, run: str) -> Path:
        return self.state / "runs" / f"{run}.json"

    def log_path(self, run: str) -> Path:
        return self.logs / f"{run}.log"

    # ---- manifest --------------------------------------------------------------------
    def read_manifest(self) -> list[RunLine]:
        if not self.manifest.exists():
            raise CompError(f"{self.root} is not a submitted grid (no {self.manifest}); run comp grid GRID.yaml first")
        try:
            return [RunLine(**json.loads(x)) for x in self.manifest.read_text().splitlines() if x.strip()]
        except (json.JSONDecodeError, TypeError) as e:
            raise CompError(f"{self.manifest} is corrupt ({e}); resubmit the grid to rewrite it") from None

    def write_manifest(self, lines: list[RunLine]) -> None:
        write_text(self.manifest, manifest_text(lines))

    def task_lines(self, task: int) -> list[RunLine]:
        """The manifest lines array task ``task`` runs."""
        lines = self.read_manifest()
        mine = [x for x in lines if x.task == task]
        if not mine:
            raise CompError(f"task {task} is not in the manifest of {self.root} (tasks {array_tasks(lines)[0]}"
                            f"-{array_tasks(lines)[-1]})")
        return mine

    # ---- submissions and run records --------------------------------------------------
    def jobs(self) -> list[dict]:
        if not self.jobs_file.exists():
            return []
        return [json.loads(x) for x in self.jobs_file.read_text().splitlines() if x.strip()]

    def add_job(self, job: dict) -> None:
        write_text(self.jobs_file, "".join(json.dumps(j) + "\n" for j in [*self.jobs(), job]))

    def record(self, run: str) -> dict:
        path = self.record_path(run)
        return read_json(path, "run record") if path.exists() else {}

    def write_record(self, run: str, record: dict) -> None:
        write_json(self.record_path(run), record)

    def log_tail(self, run: str, lines: int = 10) -> list[str]:
        path = self.log_path(run)
        if not path.exists():
            return []
        return path.read_text(errors="replace").splitlines()[-lines:]
