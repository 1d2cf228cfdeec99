"""Multi-task mixtures: one model learns several tasks; the first token names the task.

Example, ``tasks = parity,copy`` with ``x = 1 0 1``::

    <parity> 1 0 1 EoI 1 1 0
    <copy>   1 0 1 EoI 1 0 1

A batch splits its rows evenly between the member tasks (the first members take the
remainder), or by given shares (``shares``: member -> weight, largest remainder, at least one
row each; the need-weighted mixture of :mod:`comp.train.per_task`), each with its own
lengths, right-padded to one width. ``lengths`` is one range
for every member, or a dict giving each member its own (the per-task curriculum,
:mod:`comp.train.per_task`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from comp.errors import CompError
from comp.tasks.base import Batch, Task, cat_batches
from comp.tasks.lengths import LengthRange


class Mixture(Task):
    """Several tasks in one stream of batches, told apart by their task token."""

    name = "multi"

    def __init__(self, members: list[Task]):
        super().__init__(slack=0)
        self.members = members

    @property
    def token(self) -> int:  # a mixture has no token of its own
        raise AttributeError("a mixture has no task token; its members do")

    @property
    def n_classes(self) -> int:
        return max(m.n_classes for m in self.members)

    def components(self) -> list[Task]:
        return list(self.members)

    def seq_len(self, length: int) -> int:
        return max(m.seq_len(length) for m in self.members)

    def sample(
        self, gen: torch.Generator, lengths: "LengthRange | int | str | Mapping[str, LengthRange | int | str]",
        batch_size: int, shares: "Mapping[str, float] | None" = None,
    ) -> Batch:
        n = len(self.members)
        if shares:
            sizes = share_sizes([float(shares.get(m.name, 0.0)) for m in self.members], batch_size)
        else:
            sizes = [batch_size // n + (1 if i < batch_size % n else 0) for i in range(n)]
        ranges = [member_lengths(lengths, m.name) for m in self.members]
        return cat_batches([m.sample(gen, r, size) for m, r, size in zip(self.members, ranges, sizes) if size])


def share_sizes(weights: list[float], batch_size: int) -> list[int]:
    """Rows per member in proportion to ``weights`` (largest remainder; ties to the first
    members), every member at least one row when the batch has room for all."""
    n = len(weights)
    total = sum(weights)
    if total <= 0:
        raise CompError(f"mixture shares must have a positive sum, got {weights}")
    floor = 1 if batch_size >= n else 0
    free = batch_size - floor * n
    exact = [free * w / total for w in weights]
    sizes = [int(e) for e in exact]
    order = sorted(range(n), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[: free - sum(sizes)]:
        sizes[i] += 1
    return [s + floor for s in sizes]


def member_lengths(lengths: "LengthRange | int | str | Mapping[str, LengthRange | int | str]", name: str):
    """The lengths member ``name`` samples: its own entry of a dict, else the one range for all."""
    if not isinstance(lengths, Mapping):
        return lengths
    if name not in lengths:
        raise CompError(f"no lengths for member task {name!r} (given: {', '.join(lengths)}); give every member its range")
    return lengths[name]
