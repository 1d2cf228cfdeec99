"""Tasks: sequence formats, on-the-fly sampling and scoring. ``TASKS`` is the registry.

``make_task("parity")``, ``make_task("parity_nocot", slack=2)`` and
``make_task("multi", tasks=["parity", "copy"])`` build tasks by name.
"""

from __future__ import annotations

from comp.errors import CompError
from comp.tasks.base import Batch, Task, cat_batches, score
from comp.tasks.copy import Copy
from comp.tasks.lengths import LengthRange, parse_lengths
from comp.tasks.mixture import Mixture
from comp.tasks.parity import Parity, ParityNoCoT
from comp.tasks.polynomial import Polynomial

TASKS: dict[str, type[Task]] = {
    "parity": Parity,
    "parity_nocot": ParityNoCoT,
    "copy": Copy,
    "polynomial": Polynomial,
}


def make_task(name: str, slack: int = 0, tasks: "list[str] | None" = None) -> Task:
    """Build a task by registry name; ``multi`` mixes ``tasks``."""
    if name == "multi":
        members = list(tasks or [])
        if not members:
            raise CompError("task 'multi' needs its members; pass --tasks parity,copy,polynomial")
        return Mixture([make_task(m, slack=slack) for m in members])
    if name not in TASKS:
        valid = ", ".join([*TASKS, "multi"])
        raise CompError(f"unknown task {name!r}; choose one of: {valid}")
    if tasks:
        raise CompError(f"--tasks only applies to the 'multi' task, not {name!r}; drop --tasks or train 'multi'")
    return TASKS[name](slack=slack)


def member_task(task: Task, name: str = "") -> Task:
    """One task of a mixture by name (default: the first); a single task is its own member."""
    members = {m.name: m for m in task.components()}
    if not name:
        return next(iter(members.values()))
    if name not in members:
        raise CompError(f"task {name!r} is not in this run; choose one of: {', '.join(members)}")
    return members[name]


__all__ = [
    "TASKS",
    "Batch",
    "LengthRange",
    "Mixture",
    "Task",
    "cat_batches",
    "make_task",
    "member_task",
    "parse_lengths",
    "score",
]
