"""Group moves after the swap pass (``comp circuit --swap``): drop every kept edge of a
group at once, re-add the fewest edges that bring the targets back.

The swap pass (:mod:`comp.circuits.swap`) stops when no move of one or two removals (and
at most one re-add) keeps the targets. A role read through redundant copies can still
shrink by bigger moves: all kept inputs of one head dropped together, and two or three
edges into another head re-added to take over. A *group* is the kept edges that share a
receiver input (``-> L1H0.k``), a receiver (``-> L1H0``, q, k and v) or a sender
(``L0H1@input ->``) (:func:`edge_groups`); only groups of :data:`MIN_GROUP` edges or more
are moves the swap pass could not make. Each round:

1. every group is removed alone, in one batched pass; groups are tried in least-harm
   order (the largest margin over the thresholds first), :data:`GROUP_TRIES` at most;
2. for a group ``G``: from ``circuit - G``, every unit not in it (the pruned ones and
   ``G``'s own) is re-added alone, in one pass, and ordered by the margin it gives (ties:
   the logit share); the prefixes of that order of lengths ``0 .. |G| - 1`` (the move must
   shrink the circuit) are scored exactly in one pass, and the shortest that keeps every
   threshold, on the validation batch too, is the move (a destroy-and-repair step that
   re-adds several units per pass rather than one).

:func:`group_pass` alternates rounds of this with the swap pass until neither finds a move.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from comp.circuits.pruning import Pruner
from comp.circuits.swap import Move, _labels, both_margins, swap_pass

MIN_GROUP = 3  # smaller groups are moves the swap pass already tries
GROUP_TRIES = 8  # groups repaired per round, least harm first
MAX_GROUP_ROUNDS = 20
log = logging.getLogger(__name__)


@dataclass
class GroupMove:
    """One accepted group move: the group, its kept units removed, the units re-added."""

    group: str
    removed: list[str]
    added: list[str]
    margin: float  # the smallest share over its threshold after the move (the smaller of the two batches)


def edge_groups(units: list) -> dict[str, list[int]]:
    """The groups of :mod:`this module <comp.circuits.swap_groups>` over edge units (anything with
    ``sender``, ``cls``, ``receiver`` and ``receiver_node``), as unit indices; none for other units."""
    out: dict[str, list[int]] = {}
    for k, u in enumerate(units):
        if not all(hasattr(u, a) for a in ("sender", "cls", "receiver", "receiver_node")):
            return {}
        sender = u.sender if u.cls == "all" else f"{u.sender}@{u.cls}"
        keys = {f"{sender} ->", f"-> {u.receiver}", f"-> {u.receiver_node}"}
        for key in keys:
            out.setdefault(key, []).append(k)
    return out


def repair_group(pruner: Pruner, check: "Pruner | None", removed: torch.Tensor, group: torch.Tensor
                  ) -> "tuple[torch.Tensor, list[int], float] | None":
    """The smallest repair of ``removed | group`` (module docstring, step 2): the new
    ``removed``, the units re-added, its margin; None if no prefix shorter than ``group`` holds."""
    start = removed.clone()
    start[group] = True
    cand = start.nonzero()[:, 0]  # [C]: every unit not in circuit - group
    trial = start.repeat(len(cand), 1)
    trial[torch.arange(len(cand)), cand] = False
    shares = pruner.shares(trial)  # [C, 3]
    order = torch.argsort(shares[:, 0], descending=True, stable=True)  # ties: the logit share
    order = cand[order[torch.argsort(pruner.margins(shares)[order], descending=True, stable=True)]]
    n = min(len(group) - 1, len(order))
    prefixes = start.repeat(n + 1, 1)  # row j: the first j of the order re-added
    prefixes[:, order[:n]] &= ~torch.ones(n + 1, n, dtype=torch.bool).tril(-1)
    margins = both_margins(pruner, check, prefixes)  # [n + 1]
    ok = (margins > float("-inf")).nonzero()[:, 0]
    if not len(ok):
        return None
    j = int(ok.min())
    return prefixes[j], order[:j].tolist(), float(margins[j])


def removals(pruner: Pruner, removed: torch.Tensor, groups: dict[str, list[int]]
             ) -> tuple[list[tuple[tuple[int, ...], str]], torch.Tensor]:
    """The groups with :data:`MIN_GROUP` or more kept units (each set of units once, under its
    first name) in least-harm order when each is removed alone (largest margin first; ties:
    the logit share), and their shares ``[G, 3]`` in that order (one batched pass)."""
    sets: dict[tuple[int, ...], str] = {}
    for name, members in groups.items():
        live = tuple(sorted(k for k in members if not removed[k]))
        if len(live) >= MIN_GROUP and live not in sets:
            sets[live] = name
    if not sets:
        return [], torch.empty(0, 3, dtype=torch.float64)
    trial = removed.repeat(len(sets), 1)
    for row, live in enumerate(sets):
        trial[row, list(live)] = True
    shares = pruner.shares(trial)  # [G, 3]
    order = torch.argsort(shares[:, 0], descending=True, stable=True)
    order = order[torch.argsort(pruner.margins(shares)[order], descending=True, stable=True)]
    names = list(sets.items())
    return [names[k] for k in order.tolist()], shares[order]


def group_round(pruner: Pruner, removed: torch.Tensor, groups: dict[str, list[int]], check: "Pruner | None" = None,
                tries: int = GROUP_TRIES) -> "tuple[torch.Tensor, GroupMove] | None":
    """One round (module docstring): the first group move that holds, or None."""
    labels = _labels(pruner)
    for live, name in removals(pruner, removed, groups)[0][:tries]:
        found = repair_group(pruner, check, removed, torch.tensor(live))
        if found is None:
            continue
        new, added, margin = found
        gone = [labels[k] for k in live if new[k]]
        return new, GroupMove(name, gone, [labels[k] for k in added if k not in live], margin)
    return None


def group_pass(pruner: Pruner, removed: torch.Tensor, groups: dict[str, list[int]], check: "Pruner | None" = None,
               tries: int = GROUP_TRIES, rounds: int = MAX_GROUP_ROUNDS, trail: "list[torch.Tensor] | None" = None
               ) -> tuple[torch.Tensor, list[Move], list[GroupMove]]:
    """``removed`` after alternating group rounds and the swap pass (:func:`swap_pass`) until
    neither finds a move: the new ``removed``, the swap moves and the group moves made
    (``trail``, if given, gets the circuit after each move)."""
    moves: list[Move] = []
    made: list[GroupMove] = []
    for _ in range(rounds):
        found = group_round(pruner, removed, groups, check, tries)
        if found is None:
            break
        removed, move = found
        made.append(move)
        if trail is not None:
            trail.append(removed.clone())
        log.info("group move %d: %s: -%s +%s (margin %.4f): %d kept", len(made), move.group, " -".join(move.removed),
                 " +".join(move.added) or "nothing", move.margin, int((~removed).sum()))
        removed, more = swap_pass(pruner, removed, check, trail=trail)
        moves += more
    return removed, moves, made
