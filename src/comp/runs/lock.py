"""One writer per run directory: a lock file held while ``comp train`` works on a run.

``<run>/.lock`` holds ``{"pid", "host", "started"}`` of the process that trains the run.
It is created exclusively (``O_CREAT | O_EXCL``), so of two ``comp train`` processes
started on one run the second is refused with one line naming the first, instead of both
writing the same checkpoints. It is removed on every exit path the process lives through
(return, exception, SIGTERM/SIGUSR1 checkpoints, Ctrl-C); a process killed outright
(SIGKILL, out of memory, node failure) leaves it behind, and the next one takes it over
when the pid it names no longer runs on this host. A lock from another host cannot be
checked from here: the message says which file to remove if that process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from comp.errors import CompError

LOCK_FILE = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OSError, ValueError, OverflowError):
        return False
    return True


def holder(run_dir: "str | Path") -> "dict | None":
    """The live process holding the lock of ``run_dir`` (``None``: free, or its holder is gone)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        info = json.loads(path.read_text())
        pid, host = int(info["pid"]), str(info["host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # half-written by a process killed while taking it: stale
    if host == socket.gethostname() and not _alive(pid):
        return None
    return info


def _create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, f)
    return True


def refuse_if_busy(run_dir: "str | Path") -> None:
    """Refuse (one line naming the holder) when a live process other than this one holds the lock
    of ``run_dir``: what it is writing is not to be touched, e.g. cleared as an unstarted run."""
    info = holder(run_dir)
    if info is not None and not (info["pid"] == os.getpid() and info["host"] == socket.gethostname()):
        raise CompError(
            f"run {run_dir} is in use by process {info['pid']} on {info['host']} (since {info.get('started', '?')}); "
            f"wait for it to finish or stop it; if that process is gone, remove {Path(run_dir) / LOCK_FILE}"
        )


def acquire(run_dir: "str | Path") -> Path:
    """Take the lock of ``run_dir`` (created if needed), or refuse if a live process holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    for _ in range(3):  # a stale lock is removed and taken; a race with another taker is retried
        if _create(path):
            return path
        refuse_if_busy(run_dir)
        path.unlink(missing_ok=True)  # stale: its process is gone
    raise CompError(f"could not lock run {run_dir} (another process keeps taking {path}); try again")


def release(path: Path) -> None:
    """Remove a lock this process holds (no-op if it is gone or another process took it)."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def locked(run_dirs: "list[Path] | Path") -> Iterator[None]:
    """Hold the locks of one or several run directories for the duration of the block.
    A directory the lock itself created and that is empty at the end (the work failed
    before writing anything, e.g. on a bad parent run) is removed again."""
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    new = [d for d in dirs if not d.exists()]
    taken: list[Path] = []
    try:
        for d in dirs:
            taken.append(acquire(d))
        yield
    finally:
        for path in taken:
            release(path)
        for d in new:
            with contextlib.suppress(OSError):
                d.rmdir()  # only if empty
