"""What array task ``i`` of a grid runs: ``python -m comp.grid.task GRID_DIR i``.

The runner reads manifest line ``i`` and, unless the run is already done, runs its comp
command line (or, for an interrupted train run, ``comp train --resume``) as a child
process whose output is appended to ``_grid/logs/<run>.log``. It records what happens
in ``_grid/runs/<run>.json``.

Preemption: the job script ``exec``'s this runner, so Slurm's warning
(``--signal=B:USR1@120``) reaches it; it passes ``SIGUSR1`` (and ``SIGTERM``) on to the
child, which checkpoints at once and exits with :data:`comp.signals.EXIT_INTERRUPTED`.
After a ``SIGUSR1`` the runner then requeues its own array task (``scontrol requeue
<array job>_<task>``); the next attempt resumes from the checkpoint. ``SIGTERM`` (cancel,
requeue by hand, time limit) only checkpoints: Slurm decides what comes next.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from comp.errors import CompError
from comp.grid.bases import base_for
from comp.grid.layout import GridDir, now
from comp.grid.status import is_done
from comp.signals import EXIT_INTERRUPTED


def job_label() -> str:
    """``<array job>_<task>`` under Slurm, ``local`` otherwise."""
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID", "local")


def run_task(root: "str | Path", index: int) -> int:
    """Run manifest line ``index`` of the grid in ``root``; returns the exit status."""
    grid = GridDir(root)
    line = grid.line(index)
    grid.logs.mkdir(parents=True, exist_ok=True)
    with open(grid.log_path(line.run), "a") as log:

        def say(msg: str) -> None:
            text = f"[comp grid {now()}] {line.run}: {msg}"
            print(text, flush=True)
            log.write(text + "\n")
            log.flush()

        if is_done(grid, line):
            say("already done, skipping")
            return 0
        argv = base_for(line.argv).command(line)
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        record = {"run": line.run, "index": index, "job": job_label(), "host": socket.gethostname(),
                  "attempt": attempt, "started": now(), "argv": argv}
        say(f"attempt {attempt} on {record['host']} (job {record['job']}): comp {shlex.join(argv)}")
        got: list[int] = []
        children: list[subprocess.Popen] = []

        def forward(signum: int, frame) -> None:
            got.append(signum)
            if children and children[0].poll() is None:
                children[0].send_signal(signum)

        for s in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(s, forward)
        children.append(subprocess.Popen([sys.executable, "-m", "comp", *argv], stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        grid.write_record(line.run, {**record, "state": "running", "pid": children[0].pid})
        rc = children[0].wait()
        if got and rc in (-signal.SIGUSR1, -signal.SIGTERM):
            rc = EXIT_INTERRUPTED  # the signal came before the child could catch it: its last checkpoint stands
        state = "done" if rc == 0 else "interrupted" if rc == EXIT_INTERRUPTED else "failed"
        if state == "interrupted" and signal.SIGUSR1 in got and "SLURM_JOB_ID" in os.environ:
            # <array>_<task>, not $SLURM_JOB_ID: the last task's job id is the array's, which names every task
            requeue = subprocess.run(["scontrol", "requeue", job_label()], capture_output=True, text=True)
            if requeue.returncode == 0:
                state, rc = "requeued", 0
            else:
                say(f"scontrol requeue failed: {requeue.stderr.strip()}")
        grid.write_record(line.run, {**record, "state": state, "rc": rc, "ended": now()})
        say(f"{state} (exit {rc})")
        return rc


def main(args: list[str]) -> int:
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m comp.grid.task GRID_DIR INDEX", file=sys.stderr)
        return 2
    try:
        return run_task(args[0], int(args[1]))
    except CompError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
