"""A grid's directory: its runs, and the state comp keeps about them under ``_grid/``.

    <out>/<grid>/                 one run directory per manifest line, named after its axes
    <out>/<grid>/_grid/
        manifest.jsonl            line i: {"index", "run", "run_dir", "axes", "argv"}; array task i runs it
        jobs.jsonl                one line per submission: {"backend", "job_id", "indices", "time"}
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

    index: int  # array task id
    run: str  # run name, from the axis values
    run_dir: str  # absolute path of the run's directory
    axes: dict  # axis name -> value
    argv: list  # comp command line (without "comp") of a fresh start


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
        write_text(self.manifest, "".join(json.dumps(asdict(x)) + "\n" for x in lines))

    def line(self, index: int) -> RunLine:
        lines = self.read_manifest()
        if not 0 <= index < len(lines):
            raise CompError(f"task {index} is outside the manifest of {self.root} (0-{len(lines) - 1})")
        return lines[index]

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
