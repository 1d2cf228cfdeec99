"""The swap pass after greedy pruning (``comp circuit --swap``): moves that remove two kept
units and re-add at most one pruned unit, checked on a validation batch.

Greedy pruning and its final pass (:class:`comp.circuits.pruning.Pruner`) stop at a
circuit from which no *single* unit can go: 1-minimal, not minimal. When a role is read
through several redundant copies (the default model's layer-1 heads), greedy pruning keeps
part of every copy, and no one removal helps while trading one kept unit for a pruned one
and dropping a second would. A move here is ``circuit - {a, b} + {c}`` (``c`` a pruned
unit or nothing; or ``circuit - {a}``): the circuit shrinks by one or two.

Every pair and every re-add cannot be tried exactly (89 kept and 241 pruned edges give
about a million moves), so each round

1. measures, in one batched pass each, every kept unit removed alone and every pruned
   unit re-added alone: ``[A, 3]`` and ``[P, 3]`` changes of the shares (logit, answer,
   cot) from the current circuit (re-adds: in full after a round that found nothing,
   else only units pruned since; a stale change only orders the tries);
2. if a single removal keeps every threshold, makes the best one (the final pass);
3. else predicts each two-out move's shares as the sum of its parts' changes (per share; a
   move's margin is the smallest share minus its threshold), and verifies the best
   predicted moves by exact patching, :data:`CHUNK` at a time (:data:`TRIES` at most);
   in the first chunk with a move that keeps every threshold, the one with the largest
   margin is made.

It stops when no verified move keeps the thresholds (or after :data:`MAX_ROUNDS` moves).
The prediction only orders the tries: interactions make moves the sum calls infeasible
pass exactly (removing a head's input and its output together costs less than both
alone), and only exact patching decides.

**Validation.** The more a search prunes, the more it fits the batch it sees (on the
default model a circuit 28% smaller fit the discovery batch as well and kept 0.85 of
whole CoT held out, against 0.98). Given a second batch of other sequences (``check``:
:func:`comp.circuits.discover.discover_run` uses data seed ``seed + 4``, neither the
discovery nor the held-out batch), :func:`repair` first re-adds pruned units, the one
that helps there most each time, until the circuit keeps every threshold there too, and
a move is made only if it keeps them on both batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from comp.circuits.pruning import TOL, Pruner

TRIES = 256  # two-out moves verified exactly per round, best predicted first
CHUNK = 32  # ... in batches of this many candidates (the first batch with a move that holds ends the round)
MAX_ROUNDS = 60
ROWS = 16  # re-add candidates per block when predicting (bounds the [rows, pairs] buffer)
log = logging.getLogger(__name__)


@dataclass
class Move:
    """One accepted move: the kept units removed, the pruned unit re-added ("" when none)."""

    removed: list[str]
    added: str
    margin: float  # the smallest share over its threshold after the move (the smaller of the two batches)


def _labels(pruner: Pruner) -> list[str]:
    """Each unit's label (a unit without one: its text)."""
    return [getattr(u, "label", str(u)) for u in pruner.ev.units]


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


def both_margins(pruner: Pruner, check: "Pruner | None", trial: torch.Tensor,
                 margins: "torch.Tensor | None" = None) -> torch.Tensor:
    """``[K]``: each row of ``trial`` [K, n]'s smallest margin over the discovery batch (its
    ``margins`` there, if known) and ``check``'s; -inf where either misses a threshold."""
    margins = pruner.margins(pruner.shares(trial)) if margins is None else margins.clone()  # [K]
    ok = (margins >= -TOL).nonzero()[:, 0]
    if check is not None and len(ok):  # the validation batch scores only rows the discovery batch keeps
        margins[ok] = torch.minimum(margins[ok], check.margins(check.shares(trial[ok])))
    margins[margins < -TOL] = float("-inf")
    return margins


def _best(pruner: Pruner, check: "Pruner | None", trial: torch.Tensor,
          margins: "torch.Tensor | None" = None) -> "tuple[int, float] | None":
    """The row of ``trial`` [K, n] keeping every threshold on both batches (:func:`both_margins`)
    with the largest smaller margin; None if none."""
    both = both_margins(pruner, check, trial, margins)
    if not bool((both > float("-inf")).any()):
        return None
    k = int(both.argmax())
    return k, float(both[k])


def repair(check: Pruner, removed: torch.Tensor, trail: "list[torch.Tensor] | None" = None
           ) -> tuple[torch.Tensor, list[str]]:
    """``removed`` with pruned units re-added until the circuit keeps every threshold on
    ``check``'s batch: each time the one that raises the smallest margin there most (of
    those, the one with the largest logit share).
    Returns the new ``removed`` and the units re-added, in order; ``trail`` (if given) gets
    each circuit after a re-add."""
    labels = _labels(check)
    added: list[str] = []
    while float(check.margins(check.shares(removed[None]))[0]) < -TOL and bool(removed.any()):
        pruned = removed.nonzero()[:, 0]
        trial = _flipped(removed, pruned, False)
        shares = check.shares(trial)  # [P, 3]
        margins = check.margins(shares)
        tied = (margins >= margins.max() - TOL).nonzero()[:, 0]  # ties (whole-CoT counts are coarse): the most logit share
        k = int(tied[shares[tied, 0].argmax()])
        removed = trial[k]
        added.append(labels[pruned[k]])
        if trail is not None:
            trail.append(removed.clone())
        log.info("repair: +%s on the validation batch", added[-1])
    return removed, added


def swap_pass(pruner: Pruner, removed: torch.Tensor, check: "Pruner | None" = None, tries: int = TRIES,
              rounds: int = MAX_ROUNDS, trail: "list[torch.Tensor] | None" = None) -> tuple[torch.Tensor, list[Move]]:
    """``[n]`` bool: ``removed`` after the swap pass (module docstring), and the moves made.
    ``check``: the validation batch's pruner; every move must keep its thresholds too;
    ``trail`` (if given) gets the circuit after each move."""
    moves: list[Move] = []
    labels = _labels(pruner)
    known = torch.full((pruner.n, 3), float("nan"), dtype=torch.float64)  # last measured re-add change per unit
    full = True  # measure every re-add change this round (else only units without one)
    while len(moves) < rounds:
        kept, pruned = (~removed).nonzero()[:, 0], removed.nonzero()[:, 0]
        if len(kept) < 1:
            break
        base = pruner.shares(removed[None])[0]  # [3]
        drops = _flipped(removed, kept, True)  # [A, n]: each kept unit removed alone
        alone = pruner.shares(drops)  # [A, 3]
        single = _best(pruner, check, drops, pruner.margins(alone))
        if single is not None:
            k, margin = single
            made = drops[k], Move([labels[kept[k]]], "", margin)
        elif len(kept) >= 2:
            todo = pruned if full else pruned[known[pruned, 0].isnan()]
            if len(todo):
                known[todo] = pruner.shares(_flipped(removed, todo, False)) - base
            c, i, j = best_moves(base, alone - base, known[pruned], pruner.thresholds, tries)
            made = _verify(pruner, check, removed, kept, pruned, c, i, j, labels)
        else:
            made = None
        if made is None:
            if full:
                break
            full = True  # measure every re-add against this circuit and try again
            continue
        removed, move = made
        moves.append(move)
        if trail is not None:
            trail.append(removed.clone())
        full = False  # next round: measure only units never measured (the rest: stale, ordering only)
        log.info("move %d: -%s +%s (margin %.4f): %d kept", len(moves), " -".join(move.removed),
                 move.added or "nothing", move.margin, int((~removed).sum()))
    return removed, moves


def _verify(pruner: Pruner, check: "Pruner | None", removed: torch.Tensor, kept: torch.Tensor, pruned: torch.Tensor,
            c: torch.Tensor, i: torch.Tensor, j: torch.Tensor, labels: list[str]) -> "tuple[torch.Tensor, Move] | None":
    """The best move (:func:`_best`) of the first chunk of ``(c, i, j)`` with one that keeps
    every threshold by exact patching (the new ``removed`` and the move), or None."""
    for at in torch.arange(len(c)).split(CHUNK):
        trial = removed.repeat(len(at), 1)  # [chunk, n]
        rows = torch.arange(len(at))
        trial[rows, kept[i[at]]] = True
        trial[rows, kept[j[at]]] = True
        back = c[at] > 0
        trial[rows[back], pruned[c[at][back] - 1]] = False
        best = _best(pruner, check, trial)
        if best is not None:
            k, margin = best
            return trial[k], Move(removed=[labels[kept[i[at][k]]], labels[kept[j[at][k]]]],
                                  added=labels[pruned[c[at][k] - 1]] if c[at][k] > 0 else "", margin=margin)
    return None
