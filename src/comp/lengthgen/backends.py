"""Where a study's runs are trained. ``BACKENDS`` is the registry.

A backend gets every :class:`~comp.lengthgen.study.RunJob` of a study and returns those
still unfinished when it returns (the study reports on the finished ones and lists the
rest as pending). ``local`` trains them one after another in this process; a cluster
backend would submit the unfinished ones and return them as pending.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol

from comp.errors import CompError
from comp.lengthgen.study import RunJob
from comp.train import train


class Backend(Protocol):
    def run(self, jobs: list[RunJob]) -> list[RunJob]:
        """Bring ``jobs`` towards finished; return those that are not finished yet."""
        ...


class LocalBackend:
    """Train unfinished runs here, one after another: resume interrupted ones, start new ones."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def run(self, jobs: list[RunJob]) -> list[RunJob]:
        todo = [j for j in jobs if j.status != "finished"]
        for i, job in enumerate(todo, 1):
            status = job.status
            print(f"[{i}/{len(todo)}] {job.name}: {'resuming' if status == 'interrupted' else 'training'}",
                  file=sys.stderr)
            if status == "stale":  # started but killed before its first checkpoint: nothing to keep
                for name in ("config.json", "metrics.jsonl"):
                    (job.run_dir / name).unlink(missing_ok=True)
            train(job.config, job.run_dir, resume=status == "interrupted", quiet=self.quiet)
        return []


BACKENDS: dict[str, Callable[..., Backend]] = {"local": LocalBackend}


def get_backend(name: str, **options) -> Backend:
    if name not in BACKENDS:
        raise CompError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[name](**options)
