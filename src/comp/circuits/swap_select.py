"""Choosing the circuit on a selection batch (``comp circuit --swap --select SPEC``): the
smallest circuit the search passed through that keeps the ``--select`` thresholds on a
fourth batch of sequences.

The search after pruning (repair on the validation batch, the swap pass, group and
plateau moves: :mod:`comp.circuits.swap`, :mod:`~comp.circuits.swap_groups`,
:mod:`~comp.circuits.swap_plateau`) chooses every move on two batches, the discovery and
the validation batch, and fits both: the more moves, the further the circuit's scores on
other sequences fall below theirs (the default model's seed 2: whole CoT 0.957 and 0.959
on those batches after 17 re-adds and 16 moves). Its *trail* is every circuit it passed
through: the pruned circuit, the circuit after each re-add and after each move.
:func:`choose` scores the whole trail on a *selection batch* the search never saw
(:func:`comp.circuits.discover.discover_run`: data seed ``seed + 6``, reference set
``+ 7``) in one batched pass and keeps the smallest circuit that keeps every ``--select``
threshold there (ties: the largest smallest margin, then the later one); when none does,
the search's last circuit, with a warning. Early stopping, with the search's path as the
candidates: the held-out batch, which scores the result, still chooses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from comp.circuits.pruning import TOL, Pruner


@dataclass
class Selection:
    """What :func:`choose` saw and chose (serialised with ``asdict`` into the circuit's JSON)."""

    keep: dict  # the --select thresholds (comp.circuits.pruning.Keep.to_dict)
    seed: int  # the selection batch's data seed
    sizes: list[int] = field(default_factory=list)  # units kept by each circuit of the trail, in the search's order
    margins: list[float] = field(default_factory=list)  # each one's smallest margin on the selection batch (< 0: misses)
    chosen: int = -1  # the trail index chosen
    held: bool = False  # whether the chosen circuit keeps every --select threshold there


def choose(scorer: Pruner, trail: list[torch.Tensor], seed: int) -> tuple[torch.Tensor, Selection]:
    """The circuit of ``trail`` (``removed`` masks ``[n]``, in the search's order, the last one
    its result) chosen on ``scorer``'s batch under its thresholds (module docstring), and
    the :class:`Selection` record."""
    stacked = torch.stack(trail)  # [T, n]
    margins = scorer.margins(scorer.shares(stacked))  # [T]
    sizes = (~stacked).sum(1)  # [T]
    ok = (margins >= -TOL).nonzero()[:, 0]
    if len(ok):
        smallest = ok[sizes[ok] == sizes[ok].min()]
        best = smallest[margins[smallest] >= margins[smallest].max() - TOL]
        k = int(best.max())
    else:
        k = len(trail) - 1
    return trail[k].clone(), Selection(keep=scorer.keep.to_dict(), seed=seed, sizes=sizes.tolist(),
                                       margins=[float(m) for m in margins], chosen=k, held=bool(len(ok)))
