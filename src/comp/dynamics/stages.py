"""Stage changes along training, from a measure's values at the snapshot steps.

- *formation* (:func:`formation_step`): the first snapshot from which the measure stays at
  or above a threshold until the end (the step where the iteration head forms:
  its best iteration score >= ``threshold``, 0.5 by default: more than half the
  attention of the predicting position on the input it should read);
- *jump* (:func:`jump_step`): the snapshot ending the largest rise between two consecutive
  snapshots, if that rise is at least ``min_rise`` (training and long-length accuracy).

Snapshots are log-spaced, so a step found here is known to within the gap to the
snapshot before it; the result gives that snapshot too (``after``).
"""

from __future__ import annotations

from dataclasses import dataclass

FORM_THRESHOLD = 0.5
MIN_RISE = 0.2


@dataclass
class Stage:
    """One stage change of a run."""

    name: str  # iteration_head | train_acc | long_acc
    measure: str  # the measure it is read from
    step: "int | None"  # None: not found
    after: "int | None"  # the snapshot before it (the change happened in (after, step])
    value: "float | None"  # the measure at ``step``
    definition: str


def formation_step(values: list["float | None"], threshold: float) -> "int | None":
    """Index of the first value from which every value is >= ``threshold`` (None: never)."""
    start = None
    for i, v in enumerate(values):
        if v is None or v < threshold:
            start = None
        elif start is None:
            start = i
    return start


def jump_step(values: list["float | None"], min_rise: float) -> "int | None":
    """Index of the snapshot ending the largest rise over its predecessor (None: rise < ``min_rise``)."""
    rises = [(b - a, i + 1) for i, (a, b) in enumerate(zip(values, values[1:])) if a is not None and b is not None]
    if not rises:
        return None
    rise, i = max(rises)
    return i if rise >= min_rise else None


def _stage(name: str, measure: str, steps: list[int], values: list, index: "int | None", definition: str) -> Stage:
    if index is None:
        return Stage(name, measure, None, None, None, definition)
    return Stage(name, measure, steps[index], steps[index - 1] if index else None, values[index], definition)


def find_stages(steps: list[int], series: dict[str, list], threshold: float = FORM_THRESHOLD,
                min_rise: float = MIN_RISE) -> list[Stage]:
    """The stages the measured ``series`` (name -> value per snapshot) show."""
    out = []
    if "iteration" in series:
        i = formation_step(series["iteration"], threshold)
        out.append(_stage("iteration_head", "iteration", steps, series["iteration"], i,
                          f"first snapshot from which the best iteration score stays >= {threshold}"))
    for name in ("train_acc", "long_acc"):
        if name in series and any(v is not None for v in series[name]):
            i = jump_step(series[name], min_rise)
            out.append(_stage(name, name, steps, series[name], i,
                              f"largest rise of {name} between consecutive snapshots (if >= {min_rise})"))
    return out
