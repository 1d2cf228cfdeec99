"""A grid file that changed since its runs were submitted: detected and explained.

The grid directory keeps the manifest of the last submission (``_grid/manifest.jsonl``:
every run's name, axes and command line). Resubmitting compares the expanded file with
it, run by run (runs are matched by name, which is their directory):

- new runs (more values on an axis) and dropped runs (fewer) are a safe change: the runs
  that stay are the same runs, and a note says what changed;
- an axis added or removed, or a run whose name stays while its command line changes
  (another setting in the same directory), would mix runs of two different grids in one
  directory and one table: refused, with the difference spelled out and the way out
  (a new grid name, or collecting the submitted grid by its directory).

``comp collect`` / ``comp grid status`` given the changed file refuse the same way; given
the grid directory or name, they read the submitted manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from comp.errors import CompError
from comp.grid.layout import GridDir, RunLine


@dataclass
class GridChange:
    """How a grid's expanded lines differ from its submitted manifest."""

    added_axes: list[str] = field(default_factory=list)
    removed_axes: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # same run name, other command line or axes
    new: list[str] = field(default_factory=list)  # runs only in the file
    dropped: list[str] = field(default_factory=list)  # runs only in the submitted manifest

    @property
    def mixes(self) -> bool:
        """Whether going on would put runs of two different grids under one directory."""
        return bool(self.added_axes or self.removed_axes or self.changed)

    def __bool__(self) -> bool:
        return bool(self.mixes or self.new or self.dropped)

    def explain(self) -> str:
        """One line: what changed."""
        parts = []
        if self.added_axes:
            parts.append(f"axes added: {', '.join(self.added_axes)}")
        if self.removed_axes:
            parts.append(f"axes removed: {', '.join(self.removed_axes)}")
        if self.changed:
            parts.append(f"{len(self.changed)} runs keep their name but change their command (e.g. {self.changed[0]})")
        if self.new:
            parts.append(f"{len(self.new)} new runs")
        if self.dropped:
            parts.append(f"{len(self.dropped)} runs no longer in the file (their directories stay)")
        return "; ".join(parts)


def _axes(lines: list[RunLine]) -> list[str]:
    return list(dict.fromkeys(a for x in lines for a in x.axes))


def compare(submitted: list[RunLine], lines: list[RunLine]) -> GridChange:
    """The difference between a submitted manifest and freshly expanded lines."""
    old, new = {x.run: x for x in submitted}, {x.run: x for x in lines}
    old_axes, new_axes = _axes(submitted), _axes(lines)
    return GridChange(
        added_axes=[a for a in new_axes if a not in old_axes],
        removed_axes=[a for a in old_axes if a not in new_axes],
        changed=[r for r in new if r in old and (new[r].argv, new[r].axes, new[r].run_dir)
                 != (old[r].argv, old[r].axes, old[r].run_dir)],
        new=[r for r in new if r not in old],
        dropped=[r for r in old if r not in new],
    )


def check_grid_change(gdir: GridDir, lines: list[RunLine]) -> GridChange:
    """The change since the last submission (empty for a first one); a change that would mix
    runs of two grids is a :class:`CompError` explaining it."""
    if not gdir.exists():
        return GridChange()
    change = compare(gdir.read_manifest(), lines)
    if change.mixes:
        raise CompError(
            f"grid {gdir.name} changed since it was submitted ({change.explain()}), so its directory {gdir.root} "
            "would mix runs of two grids; give the changed grid a new name (name: in the file), or collect "
            f"what was submitted with comp collect {gdir.root}"
        )
    return change
