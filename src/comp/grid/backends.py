"""Where a grid's runs execute: a Slurm array (:func:`submit_slurm`) or local worker
processes (:func:`run_local`); both run ``python -m comp.grid.task GRID_DIR t`` for each
array task ``t`` (one manifest line, or a pack of seeds). :func:`queue_states` asks Slurm
which array tasks are still queued.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from comp.errors import CompError
from comp.grid.layout import GridDir, now
from comp.grid.sbatch import array_spec, sbatch_script


def task_command(grid: GridDir) -> list[str]:
    """The command of every task of a grid (the task index is appended)."""
    return [sys.executable, "-m", "comp.grid.task", str(grid.root)]


def job_script(grid: GridDir, tasks: list[int], max_parallel: int, options: dict[str, Any]) -> str:
    """The job script that runs array tasks ``tasks`` of ``grid`` as one array."""
    return sbatch_script(
        task_command(grid),
        job_name=grid.name,
        array=array_spec(tasks, max_parallel),
        output=str(grid.logs / "slurm-%A_%a.out"),
        chdir=os.getcwd(),
        **options,
    )


def check_sbatch() -> None:
    """A clear error where Slurm cannot take jobs."""
    if shutil.which("sbatch") is None:
        raise CompError("sbatch not found: run on a Slurm login node, start launchers/local-slurm/start.sh, "
                        "or use --backend local")


def submit_slurm(grid: GridDir, script: str, tasks: list[int]) -> str:
    """Write the job script, ``sbatch --parsable`` it, record the job; returns the job id."""
    check_sbatch()
    grid.logs.mkdir(parents=True, exist_ok=True)
    from comp.io import write_text

    write_text(grid.script, script)
    proc = subprocess.run(["sbatch", "--parsable", str(grid.script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompError(f"sbatch refused the job: {proc.stderr.strip() or proc.stdout.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    grid.add_job({"backend": "slurm", "job_id": job_id, "tasks": tasks, "time": now()})
    return job_id


def queue_states(job_ids: list[str]) -> "dict[int, str] | None":
    """Array task id -> Slurm state (PENDING, RUNNING, ...) for the live tasks of ``job_ids``;
    ``None`` when Slurm cannot be asked (no squeue, controller down)."""
    if not job_ids:
        return {}
    if shutil.which("squeue") is None:
        return None
    proc = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%F %K %T"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {} if "Invalid job id" in proc.stderr else None  # all of them long finished / no answer
    states: dict[int, str] = {}
    for row in proc.stdout.splitlines():
        _, task, state = row.split()
        if task.isdigit():
            states[int(task)] = state
    return states


def run_local(grid: GridDir, tasks: list[int], workers: int,
              on_exit: Callable[[str, int, float], None] = lambda runs, rc, seconds: None) -> dict[int, int]:
    """Run array tasks ``tasks`` with up to ``workers`` processes at once; returns task -> exit
    status and reports each finished task as ``on_exit(runs, rc, seconds)`` (``runs``: its run
    names, joined by ``+``). Ctrl-C stops the workers with SIGTERM: train runs checkpoint (state interrupted)."""
    grid.add_job({"backend": "local", "job_id": f"local-{os.getpid()}", "tasks": tasks, "time": now()})
    names: dict[int, list[str]] = {}
    for x in grid.read_manifest():
        names.setdefault(x.task, []).append(x.run)
    # not a Slurm task even inside an allocation: the runner must never requeue anything
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                                                           "SLURM_RESTART_COUNT")}
    env.update(WANDB_MODE=os.environ.get("WANDB_MODE", "offline"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    todo, running, codes = list(tasks), {}, {}
    try:
        while todo or running:
            while todo and len(running) < workers:
                t = todo.pop(0)
                # a session of its own: a terminal's Ctrl-C reaches only us, and we stop the workers cleanly
                running[t] = (subprocess.Popen([*task_command(grid), str(t)], env=env, start_new_session=True,
                                               stdout=subprocess.DEVNULL), time.perf_counter())
            for t, (proc, start) in list(running.items()):
                if proc.poll() is not None:
                    codes[t] = proc.returncode
                    del running[t]
                    on_exit("+".join(names[t]), proc.returncode, time.perf_counter() - start)
            time.sleep(0.05)
    except KeyboardInterrupt:
        for proc, _ in running.values():
            proc.terminate()
        for t, (proc, _) in running.items():
            codes[t] = proc.wait()
        raise
    return codes


def grid_jobs(grid: GridDir) -> list[str]:
    """The Slurm job ids submitted for a grid."""
    return [j["job_id"] for j in grid.jobs() if j.get("backend") == "slurm"]


def queue_of(grid: GridDir) -> "dict[int, str] | None":
    """Live array tasks of a grid (see :func:`queue_states`)."""
    return queue_states(grid_jobs(grid))

