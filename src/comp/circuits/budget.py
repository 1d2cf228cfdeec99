"""A size budget for a found circuit (``comp circuit --budget F``): at most a share ``F`` of
the units (edges at ``--level edges``, nodes at ``nodes``), even past the ``--keep`` thresholds.

Pruning and the search after it (:mod:`comp.circuits.pruning`, :mod:`comp.circuits.swap`)
keep every ``--keep`` threshold on the discovery batch (and on the validation batch with
``--swap``), and stop where no move keeps them: the circuit is as small as the thresholds
allow, however large that is. A researcher who wants the best circuit of a given size (a
quarter of the edges, say) asks for it here. While the circuit has more than
``floor(F * total)`` units (at least one), :func:`trim` removes the unit whose removal
leaves the largest smallest margin over the thresholds, on the discovery batch and the
validation batch together (every kept unit removed alone, one batched pass per batch).
Each removal is recorded with its margin, so a reader sees how far below the thresholds,
if at all, the budget took the circuit; the held-out batch still only scores the result.
A circuit already within the budget is left as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from comp.circuits.pruning import TOL, Pruner
from comp.circuits.swap import _flipped, _labels


@dataclass
class Trim:
    """One unit removed to fit the budget."""

    removed: str  # its label
    margin: float  # the circuit's smallest margin over the thresholds after it, on both batches (< 0: misses one)


def limit(budget: float, total: int) -> int:
    """The most units a circuit may keep under ``budget`` (a share in (0, 1]) of ``total``: at least one."""
    return max(1, math.floor(budget * total + 1e-9))


def trim(pruner: Pruner, removed: torch.Tensor, check: "Pruner | None", most: int) -> tuple[torch.Tensor, list[Trim]]:
    """``removed [n]`` with kept units removed, the least harmful first (module docstring), until
    at most ``most`` are kept; and the :class:`Trim` of each removal, in order."""
    labels = _labels(pruner)
    removed = removed.clone()
    trims: list[Trim] = []
    while int((~removed).sum()) > most:
        kept = (~removed).nonzero()[:, 0]  # [A]
        trial = _flipped(removed, kept, True)  # [A, n]: each kept unit removed alone
        margins = pruner.margins(pruner.shares(trial))  # [A]
        if check is not None:
            margins = torch.minimum(margins, check.margins(check.shares(trial)))
        k = int(torch.nonzero(margins >= margins.max() - TOL)[0, 0])  # ties: the first unit
        removed = trial[k]
        trims.append(Trim(removed=labels[int(kept[k])], margin=float(margins[k])))
    return removed, trims


def budget_warning(trims: list[Trim], most: int) -> str:
    """The report's warning when fitting the budget took the circuit below a threshold ("" if not)."""
    below = [t for t in trims if t.margin < -TOL]
    if not below:
        return ""
    return (f"to fit --budget ({most} units), {len(below)} of the {len(trims)} units removed took the circuit below "
            f"a --keep threshold (smallest margin {min(t.margin for t in below):+.4f} on the discovery or validation batch)")


__all__ = ["Trim", "budget_warning", "limit", "trim"]
