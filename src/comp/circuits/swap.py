"""The swap pass after greedy pruning (``comp circuit --swap``): moves that remove two kept
units and re-add at most one pruned unit.

Greedy pruning and its final pass (:class:`comp.circuits.pruning.Pruner`) stop at a
circuit from which no *single* unit can go: 1-minimal, not minimal. When a role is read
through several redundant copies (the default model's layer-1 heads), greedy pruning keeps
part of every copy, and no one removal helps while trading one kept unit for a pruned one
and dropping a second would. A move here is ``circuit - {a, b} + {c}`` (``c`` a pruned
unit or nothing): the circuit shrinks by one (two with no ``c``).

Every pair and every re-add cannot be tried exactly (89 kept and 241 pruned edges give
about a million moves), so each round

1. measures, in one batched pass each, every kept unit removed alone and every pruned
   unit re-added alone: ``[A, 3]`` and ``[P, 3]`` changes of the shares (logit, answer,
   cot) from the current circuit;
2. predicts each move's shares as the sum of its parts' changes (per share; a move's
   margin is the smallest share minus its threshold), and
3. verifies the best predicted moves by exact patching, :data:`CHUNK` at a time
   (:data:`TRIES` at most); in the first chunk with a move that keeps every threshold,
   the one with the largest margin is made, the final pass (:meth:`Pruner.retry`) runs on
   the smaller circuit, and the next round starts.

It stops when no verified move keeps the thresholds (or after :data:`MAX_ROUNDS`). The
prediction only orders the tries: interactions make moves the sum calls infeasible pass
exactly (removing a head's input and its output together costs less than both alone), and
only exact patching decides. Everything is scored on the discovery batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from comp.circuits.pruning import TOL, Pruner

TRIES = 256  # moves verified exactly per round, best predicted first
CHUNK = 32  # ... in batches of this many candidates (the first batch with a move that holds ends the round)
MAX_ROUNDS = 40
ROWS = 16  # re-add candidates per block when predicting (bounds the [rows, pairs] buffer)
log = logging.getLogger(__name__)


@dataclass
class Move:
    """One accepted move: the kept units removed, the pruned unit re-added ("" when none)."""

    removed: list[str]
    added: str
    margin: float  # the smallest share over its threshold after the move (discovery batch)


def _flipped(removed: torch.Tensor, units: torch.Tensor, value: bool) -> torch.Tensor:
    """``[len(units), n]``: ``removed`` with one of ``units`` set to ``value`` per row."""
    out = removed.repeat(len(units), 1)
    out[torch.arange(len(units)), units] = value
    return out


def best_moves(base: torch.Tensor, drop: torch.Tensor, add: torch.Tensor, thresholds: torch.Tensor,
               tries: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``tries`` moves with the largest predicted margin: indices ``(c, i, j)`` with
    ``c`` a row of ``add`` plus one (0: re-add nothing) and ``i < j`` rows of ``drop``.
    ``base [3]``: the circuit's shares; ``drop [A, 3]``, ``add [P, 3]``: changes alone."""
    i, j = torch.triu_indices(len(drop), len(drop), 1)  # [pairs]
    pairs = base + drop[i] + drop[j] - thresholds  # [pairs, 3]
    adds = torch.cat([torch.zeros(1, 3, dtype=add.dtype), add])  # [P + 1, 3]
    best_v = torch.empty(0, dtype=pairs.dtype)
    best_i = torch.empty(0, dtype=torch.long)
    for lo in range(0, len(adds), ROWS):
        pred = (adds[lo : lo + ROWS, None] + pairs[None]).min(-1).values.flatten()  # [rows * pairs]
        idx = torch.arange(lo * len(i), lo * len(i) + len(pred))
        v, at = torch.cat([best_v, pred]), torch.cat([best_i, idx])
        top = v.topk(min(tries, len(v))).indices
        best_v, best_i = v[top], at[top]
    best_i = best_i[best_v.argsort(descending=True, stable=True)]
    return best_i // len(i), i[best_i % len(i)], j[best_i % len(i)]


def swap_pass(pruner: Pruner, removed: torch.Tensor, tries: int = TRIES,
              rounds: int = MAX_ROUNDS) -> tuple[torch.Tensor, list[Move]]:
    """``[n]`` bool: ``removed`` after the swap pass (module docstring), and the moves made.
    The re-add changes are measured in full once and after a round that found no move
    (then the round is tried again); in between only units newly pruned are measured,
    the others keep their last change (it only orders the tries)."""
    moves: list[Move] = []
    labels = [getattr(u, "label", str(u)) for u in pruner.ev.units]
    known = torch.full((pruner.n, 3), float("nan"), dtype=torch.float64)  # last measured re-add change per unit
    full = True  # measure every re-add change this round (else only units without one)
    while len(moves) < rounds:
        kept, pruned = (~removed).nonzero()[:, 0], removed.nonzero()[:, 0]
        if len(kept) < 2:
            break
        base = pruner.shares(removed[None])[0]  # [3]
        drop = pruner.shares(_flipped(removed, kept, True)) - base  # [A, 3]
        todo = pruned if full else pruned[known[pruned, 0].isnan()]
        if len(todo):
            known[todo] = pruner.shares(_flipped(removed, todo, False)) - base
        c, i, j = best_moves(base, drop, known[pruned], pruner.thresholds, tries)
        made = _verify(pruner, removed, kept, pruned, c, i, j, labels)
        if made is None:
            if full:
                break
            full = True  # measure every re-add against this circuit and try again
            continue
        removed, move = made
        moves.append(move)
        removed = pruner.retry(removed)
        log.info("swap move %d: -%s +%s (margin %.4f): %d kept", len(moves), " -".join(move.removed),
                 move.added or "nothing", move.margin, int((~removed).sum()))
        full = False  # next round: measure only units never measured (the rest: stale, ordering only)
    return removed, moves


def _verify(pruner: Pruner, removed: torch.Tensor, kept: torch.Tensor, pruned: torch.Tensor, c: torch.Tensor,
            i: torch.Tensor, j: torch.Tensor, labels: list[str]) -> "tuple[torch.Tensor, Move] | None":
    """The move of largest margin in the first chunk of ``(c, i, j)`` with one that keeps
    every threshold by exact patching (the new ``removed`` and the move), or None."""
    for at in torch.arange(len(c)).split(CHUNK):
        trial = removed.repeat(len(at), 1)  # [chunk, n]
        rows = torch.arange(len(at))
        trial[rows, kept[i[at]]] = True
        trial[rows, kept[j[at]]] = True
        back = c[at] > 0
        trial[rows[back], pruned[c[at][back] - 1]] = False
        margins = pruner.margins(pruner.shares(trial))  # [chunk]
        if bool((margins >= -TOL).any()):
            k = int(margins.argmax())
            return trial[k], Move(removed=[labels[kept[i[at][k]]], labels[kept[j[at][k]]]],
                                  added=labels[pruned[c[at][k] - 1]] if c[at][k] > 0 else "",
                                  margin=float(margins[k]))
    return None
