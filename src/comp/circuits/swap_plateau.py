"""Plateau moves after the swap pass (``comp circuit --swap --plateau K``): one kept unit out,
one pruned unit in, when that raises the circuit's smallest margin, so the swap pass can
go on.

The swap pass (:mod:`comp.circuits.swap`) stops when no move that shrinks the circuit
keeps every threshold on the discovery and the validation batch. Often one threshold
binds by one or two sequences (the default model's seed 1: whole CoT on the validation
batch, margin 0.003). A *plateau move* keeps the size: ``circuit - {a} + {c}`` (``a``
kept, ``c`` pruned), made when it raises the smallest margin over both batches
(:func:`comp.circuits.swap.both_margins`) by more than :data:`comp.circuits.pruning.TOL`;
the swap pass then runs again from the new circuit with that slack. Each move:

1. measures every kept unit removed alone and every pruned unit re-added alone, on each
   batch (one batched pass each), and predicts each pair's margin per batch as the sum of
   its parts' changes (the smaller of the two batches);
2. verifies the :data:`TRIES` best-predicted pairs by exact patching, ``CHUNK`` at a
   time; in the first chunk with a pair that raises the margin, the one with the largest
   margin is made.

A unit a plateau move re-added is never removed by a later plateau move, and a unit one
removed is never re-added by one (no cycles); :func:`plateau_pass` makes at most ``K``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from comp.circuits.pruning import TOL, Pruner
from comp.circuits.swap import CHUNK, TRIES, _flipped, _labels, both_margins, swap_pass

log = logging.getLogger(__name__)


@dataclass
class PlateauMove:
    """One accepted plateau move: the kept unit removed, the pruned unit re-added."""

    removed: str
    added: str
    margin_before: float  # the smallest share over its threshold before the move (the smaller of the two batches)
    margin: float  # ... after it


def predicted(pruner: Pruner, removed: torch.Tensor, kept: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
    """``[A, P]``: the predicted margin of ``circuit - {kept[a]} + {pruned[c]}`` on ``pruner``'s
    batch, the sum of each part's change alone (per share), the smallest share over its threshold."""
    base = pruner.shares(removed[None])[0]  # [3]
    drop = pruner.shares(_flipped(removed, kept, True)) - base  # [A, 3]
    add = pruner.shares(_flipped(removed, pruned, False)) - base  # [P, 3]
    return (base + drop[:, None] + add[None] - pruner.thresholds).min(-1).values  # [A, P]


def plateau_move(pruner: Pruner, check: "Pruner | None", removed: torch.Tensor, fixed_in: "set[int] | None" = None,
                 fixed_out: "set[int] | None" = None, tries: int = TRIES) -> "tuple[torch.Tensor, PlateauMove] | None":
    """The plateau move of the module docstring (the new ``removed`` and the move), or None.
    ``fixed_in``: units no move may remove; ``fixed_out``: units no move may re-add."""
    kept, pruned = (~removed).nonzero()[:, 0], removed.nonzero()[:, 0]
    if not len(kept) or not len(pruned):
        return None
    now = float(both_margins(pruner, check, removed[None])[0])
    pred = predicted(pruner, removed, kept, pruned)  # [A, P]
    if check is not None:
        pred = torch.minimum(pred, predicted(check, removed, kept, pruned))
    pred[torch.tensor([int(k) in (fixed_in or set()) for k in kept], dtype=torch.bool)] = float("-inf")
    pred[:, torch.tensor([int(k) in (fixed_out or set()) for k in pruned], dtype=torch.bool)] = float("-inf")
    flat = pred.flatten()
    top = flat.topk(min(tries, int((flat > float("-inf")).sum()))).indices  # best predicted first
    if not len(top):
        return None
    a, c = top // len(pruned), top % len(pruned)
    labels = _labels(pruner)
    for at in torch.arange(len(top)).split(CHUNK):
        trial = removed.repeat(len(at), 1)  # [chunk, n]
        rows = torch.arange(len(at))
        trial[rows, kept[a[at]]] = True
        trial[rows, pruned[c[at]]] = False
        margins = both_margins(pruner, check, trial)  # [chunk]
        k = int(margins.argmax())
        if float(margins[k]) > now + TOL:
            return trial[k], PlateauMove(labels[kept[a[at][k]]], labels[pruned[c[at][k]]], now, float(margins[k]))
    return None


def plateau_pass(pruner: Pruner, removed: torch.Tensor, check: "Pruner | None" = None, moves: int = 1,
                 tries: int = TRIES, trail: "list[torch.Tensor] | None" = None) -> tuple[torch.Tensor, list, list[PlateauMove]]:
    """``removed`` after up to ``moves`` plateau moves, each followed by the swap pass
    (:func:`comp.circuits.swap.swap_pass`): the new ``removed``, the swap moves and the
    plateau moves made (``trail``, if given, gets the circuit after each move). Stops early
    when no plateau move raises the margin."""
    swaps: list = []
    made: list[PlateauMove] = []
    fixed_in: set[int] = set()
    fixed_out: set[int] = set()
    for _ in range(moves):
        found = plateau_move(pruner, check, removed, fixed_in, fixed_out, tries)
        if found is None:
            break
        new, move = found
        fixed_in |= set((removed & ~new).nonzero()[:, 0].tolist())
        fixed_out |= set((new & ~removed).nonzero()[:, 0].tolist())
        made.append(move)
        if trail is not None:
            trail.append(new.clone())
        log.info("plateau move %d: -%s +%s (margin %.4f -> %.4f)", len(made), move.removed, move.added,
                 move.margin_before, move.margin)
        removed, more = swap_pass(pruner, new, check, tries, trail=trail)
        swaps += more
    return removed, swaps, made
