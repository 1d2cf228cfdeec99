"""What array task ``t`` of a grid runs: ``python -m comp.grid.task GRID_DIR t``.

The runner reads the manifest lines of task ``t`` (one run, or with ``pack: seed`` the
seeds of one point of the other axes), skips the runs that are done, and runs the base's
command lines for the rest (:meth:`comp.grid.bases.Base.commands`: a fresh start, or for
an interrupted train run ``comp train --resume``; a pack's seeds together with
``--seeds``) as child processes whose output is appended to ``_grid/logs/<run>.log``
(every run of a pack gets a copy). It records what happens in ``_grid/runs/<run>.json``.

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


def run_task(root: "str | Path", task: int) -> int:
    """Run array task ``task`` of the grid in ``root`` (one run, or a pack of seeds); returns the exit status."""
    grid = GridDir(root)
    lines = grid.task_lines(task)
    base = base_for(lines[0].argv)
    grid.logs.mkdir(parents=True, exist_ok=True)
    logs = [open(grid.log_path(x.run), "ab") for x in lines]  # the first gets the output, the others a copy
    try:
        def say(msg: str) -> None:
            label = lines[0].run if len(lines) == 1 else f"task {task} ({len(lines)} runs)"
            text = f"[comp grid {now()}] {label}: {msg}"
            print(text, flush=True)
            for log in logs:
                log.write(text.encode() + b"\n")
                log.flush()

        todo = [x for x in lines if not is_done(grid, x)]
        if not todo:
            say("already done, skipping")
            return 0
        if len(todo) < len(lines):
            say(f"already done: {', '.join(x.run for x in lines if x not in todo)}")
        attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        record = {"task": task, "job": job_label(), "host": socket.gethostname(), "attempt": attempt, "started": now()}
        got: list[int] = []
        children: list[subprocess.Popen] = []

        def forward(signum: int, frame) -> None:
            got.append(signum)
            if children and children[-1].poll() is None:
                children[-1].send_signal(signum)

        for s in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(s, forward)
        rc = 0
        for argv in base.commands(todo):
            if got:  # stopped between two commands: the next attempt runs what is left
                rc = EXIT_INTERRUPTED
                break
            say(f"attempt {attempt} on {record['host']} (job {record['job']}): comp {shlex.join(argv)}")
            start = logs[0].tell()
            children.append(subprocess.Popen([sys.executable, "-m", "comp", *argv], stdout=logs[0],
                                             stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
            for x in todo:
                grid.write_record(x.run, {"run": x.run, "index": x.index, **record, "argv": argv, "state": "running",
                                          "pid": children[-1].pid})
            rc = children[-1].wait()
            _copy_output(logs, start)
            if got and rc in (-signal.SIGUSR1, -signal.SIGTERM):
                rc = EXIT_INTERRUPTED  # the signal came before the child could catch it: its last checkpoint stands
            if rc != 0:
                break
        state = "done" if rc == 0 else "interrupted" if rc == EXIT_INTERRUPTED else "failed"
        if state == "interrupted" and signal.SIGUSR1 in got and "SLURM_JOB_ID" in os.environ:
            # <array>_<task>, not $SLURM_JOB_ID: the last task's job id is the array's, which names every task
            requeue = subprocess.run(["scontrol", "requeue", job_label()], capture_output=True, text=True)
            if requeue.returncode == 0:
                state, rc = "requeued", 0
            else:
                say(f"scontrol requeue failed: {requeue.stderr.strip()}")
        for x in todo:  # seeds of a pack that finished before a stop are done, whatever the others did
            grid.write_record(x.run, {**grid.record(x.run), "state": "done" if base.finished(Path(x.run_dir)) else state,
                                      "rc": rc, "ended": now()})
        say(f"{state} (exit {rc})")
        return rc
    finally:
        for log in logs:
            log.close()


def _copy_output(logs: list, start: int) -> None:
    """Append what the child wrote to the first log since ``start`` to the other logs (the other seeds of a pack)."""
    if len(logs) < 2:
        return
    logs[0].flush()
    with open(logs[0].name, "rb") as f:
        f.seek(start)
        output = f.read()
    for log in logs[1:]:
        log.write(output)
        log.flush()


def main(args: list[str]) -> int:
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m comp.grid.task GRID_DIR TASK", file=sys.stderr)
        return 2
    try:
        return run_task(args[0], int(args[1]))
    except CompError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
