"""What a circuit must keep (:class:`Keep`, ``comp circuit --keep``) and the greedy pruning
that keeps it (:class:`Pruner`).

A candidate circuit is scored by three *shares* of the full model (:func:`shares`):

- ``logit``: the share of the logit difference recovered,
  ``(m(circuit) - m(nothing)) / (m(model) - m(nothing))`` (``--faithfulness``);
- ``answer``: final-answer accuracy over the full model's;
- ``cot``: whole-CoT accuracy (every answer token right) over the full model's.

A unit may be removed only while every share named in :class:`Keep` stays at or above its
threshold. The logit difference is an average over answer tokens: a component that only
some steps of the chain need (MLP0 at EoI, the first step) costs it little, while the
whole chain of thought fails; ``cot`` is the target that keeps such components.

Greedy pruning (:meth:`Pruner.greedy`) goes ACDC's way, from the logits backwards, stage
by stage (:func:`comp.circuits.graph.stage`). In each stage every remaining candidate is
removed alone, on top of what is already removed, in one batched pass; candidates are
ordered by least harm (the smallest margin over the thresholds, largest first; ties by
the logit share), all prefixes of that order are scored in a second pass, and the longest
prefix that keeps every threshold is removed for good. A final pass (:meth:`Pruner.retry`)
then retries every kept unit of every stage against the smaller circuit, round after round,
until none can go. ``--order global`` skips the stage-by-stage pass: every unit of every
stage competes in one least-harm order from the start (the final pass alone; slower, as
copies that differ in layer 0 cannot share it, and on the default model's seed 1 it kept
86 edges where the stage order kept 101). ``--order nodes`` (edge level) prunes nodes first:
node-level greedy pruning in stage order under the same targets, then edge-level pruning
in stage order of the edges among the surviving nodes, then the final pass
(:func:`comp.circuits.discover.discover`): redundant copies of a role (heads that read the
same input) go whole, where edge by edge the thresholds stop pruning with part of each kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch

from comp.errors import CompError

Share = Literal["logit", "answer", "cot"]
Order = Literal["stages", "global", "nodes"]
ORDERS: tuple[str, ...] = ("stages", "global", "nodes")
SHARES: tuple[str, ...] = ("logit", "answer", "cot")  # columns of shares(): the order of Keep's fields
DEFAULT_FAITHFULNESS = 0.95
TOL = 1e-6
MAX_RETRY_ROUNDS = 20


@dataclass
class Scores:
    """A model, a circuit or a knocked-out model: the metrics of :mod:`comp.circuits.circuit_eval`."""

    acc_answer: float
    acc_cot: float
    logit_diff: float
    recovered: float  # share of the full model's logit difference over the all-ablated model's


@dataclass(frozen=True)
class Keep:
    """The thresholds a circuit must keep, each a share of the full model in (0, 1] or None (not asked)."""

    logit: "float | None" = DEFAULT_FAITHFULNESS
    answer: "float | None" = None
    cot: "float | None" = None

    def thresholds(self) -> torch.Tensor:
        """``[3]`` in :data:`SHARES` order; ``-inf`` where not asked."""
        return torch.tensor([float("-inf") if v is None else v for v in (self.logit, self.answer, self.cot)],
                            dtype=torch.float64)

    def spec(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in asdict(self).items() if v is not None)

    def to_dict(self) -> dict:
        return asdict(self)


def _threshold(name: str, value: float) -> float:
    if not 0 < value <= 1:
        raise CompError(f"{name} {value:g} is outside (0, 1]; give the share of the full model to keep, e.g. 0.95")
    return value


def parse_keep(spec: str = "", faithfulness: "float | None" = None, flag: str = "--keep") -> Keep:
    """``--keep answer=0.95,cot=0.9[,logit=0.95]`` and ``--faithfulness F`` (the logit target)
    as a :class:`Keep`. Neither given: ``logit=0.95``; ``--keep`` without ``logit=`` and no
    ``--faithfulness``: the accuracy targets only. ``flag``: the option named in errors."""
    if faithfulness is not None:
        _threshold("--faithfulness", faithfulness)
    if not spec.strip():
        return Keep(logit=DEFAULT_FAITHFULNESS if faithfulness is None else faithfulness)
    given: dict[str, float] = {}
    for part in spec.split(","):
        name, eq, value = part.partition("=")
        name = name.strip()
        if name not in SHARES or not eq:
            raise CompError(f"{flag} {spec!r}: {part.strip()!r} is not SHARE=VALUE with SHARE one of "
                            f"{', '.join(SHARES)}; e.g. {flag} answer=0.95,cot=0.9")
        if name in given:
            raise CompError(f"{flag} {spec!r} names {name} twice; give each share once")
        try:
            given[name] = _threshold(f"{flag} {name}", float(value))
        except ValueError:
            raise CompError(f"{flag} {spec!r}: {value.strip()!r} is not a number; e.g. {flag} answer=0.95,cot=0.9") from None
    if faithfulness is not None:
        if "logit" in given:
            raise CompError("the logit target is given twice (--faithfulness and --keep logit=); give it once")
        given["logit"] = faithfulness
    return Keep(logit=given.get("logit"), answer=given.get("answer"), cot=given.get("cot"))


class Pruner:
    """Candidates scored against the full and the all-ablated model, under a :class:`Keep`."""

    def __init__(self, ev, keep: "Keep | None" = None):
        self.ev, self.n, self.keep = ev, len(ev.units), keep or Keep()
        ends = ev.evaluate(torch.stack([torch.zeros(self.n), torch.ones(self.n)]))  # [2, 3]
        self.full, self.empty = ends[0].double(), ends[1].double()
        span = float(self.full[0] - self.empty[0])
        if abs(span) < 1e-9:
            raise CompError("ablating every component leaves the logit difference unchanged: nothing to discover")
        self.span = span
        self.thresholds = self.keep.thresholds()  # [3]
        self.retried = 0  # units the final pass removed

    def shares(self, removed: torch.Tensor) -> torch.Tensor:
        """``[K, 3]``: (logit, answer, cot) shares of the full model of each candidate (a row of ``removed``)."""
        r = self.ev.evaluate(removed).double()  # [K, 3]
        return torch.stack([(r[:, 0] - self.empty[0]) / self.span,
                            r[:, 1] / self.full[1].clamp(min=1e-12), r[:, 2] / self.full[2].clamp(min=1e-12)], dim=1)

    def margins(self, shares: torch.Tensor) -> torch.Tensor:
        """``[K]``: the smallest amount by which a candidate clears the thresholds asked (< 0: misses one)."""
        return (shares - self.thresholds).min(dim=1).values

    def ok(self, removed: torch.Tensor) -> torch.Tensor:
        """``[K]`` bool: the candidates that keep every threshold."""
        return self.margins(self.shares(removed)) >= -TOL

    def recovered(self, removed: torch.Tensor) -> torch.Tensor:
        """``[K]`` faithfulness (logit share) of each candidate."""
        return self.shares(removed)[:, 0]

    def scores(self, removed: torch.Tensor) -> Scores:
        r = self.ev.evaluate(removed[None])[0]
        return Scores(acc_answer=float(r[1]), acc_cot=float(r[2]), logit_diff=float(r[0]),
                      recovered=float((r[0] - self.empty[0]) / self.span))

    def _least_harm(self, removed: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cand`` ordered by least harm when each is removed alone on top of ``removed``,
        and whether each alone keeps every threshold (in that order)."""
        alone = removed.repeat(len(cand), 1)  # [K, n]
        alone[torch.arange(len(cand)), cand] = True
        sh = self.shares(alone)  # [K, 3]
        order = torch.argsort(sh[:, 0], descending=True, stable=True)  # ties: by the logit share
        order = order[torch.argsort(self.margins(sh)[order], descending=True, stable=True)]
        return cand[order], (self.margins(sh) >= -TOL)[order]

    def _longest_prefix(self, removed: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """``removed`` plus the longest prefix of ``order`` that keeps every threshold."""
        prefixes = removed.repeat(len(order), 1)
        prefixes[:, order] = torch.ones(len(order), len(order), dtype=torch.bool).tril()
        ok = self.ok(prefixes).nonzero()
        removed = removed.clone()
        if len(ok):
            removed[order[: int(ok.max()) + 1]] = True
        return removed

    def greedy(self, removed: "torch.Tensor | None" = None, retry: bool = True, order: "Order" = "stages") -> torch.Tensor:
        """``[n]`` bool: what greedy pruning removes (module docstring), starting from
        ``removed`` (default: nothing); ``retry``: with the final pass. ``order="global"``:
        no stage-by-stage pass, every unit of every stage tried at once from the start
        (the final pass alone)."""
        removed = torch.zeros(self.n, dtype=torch.bool) if removed is None else removed.clone()
        if order == "global":
            return self.retry(removed)
        # "nodes" at this point (the node pass done by the caller) is the stage order
        stages = torch.tensor([self.ev.stage(u) for u in self.ev.units])
        for st in sorted(set(stages.tolist()), reverse=True):
            cand = ((stages == st) & ~removed).nonzero()[:, 0]
            if len(cand):
                order, _ = self._least_harm(removed, cand)
                removed = self._longest_prefix(removed, order)
        return self.retry(removed) if retry else removed

    def retry(self, removed: torch.Tensor) -> torch.Tensor:
        """The final pass: every kept unit (all stages at once) removed alone from the smaller
        circuit; those that keep every threshold are removed as in a stage (longest prefix
        by least harm), until none can go (at most :data:`MAX_RETRY_ROUNDS` rounds)."""
        for _ in range(MAX_RETRY_ROUNDS):
            cand = (~removed).nonzero()[:, 0]
            if not len(cand):
                break
            order, alone_ok = self._least_harm(removed, cand)
            if not bool(alone_ok.any()):
                break
            before = int(removed.sum())
            removed = self._longest_prefix(removed, order[alone_ok])
            self.retried += int(removed.sum()) - before
        return removed

    def top_k(self, importance: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The smallest set of the most important units keeping every threshold by exact
        patching: sizes on a grid, then every size between the last miss and the first hit."""
        order = torch.argsort(importance, descending=True, stable=True)

        def removed_for(sizes: list[int]) -> torch.Tensor:
            keep = torch.zeros(len(sizes), self.n, dtype=torch.bool)
            for i, k in enumerate(sizes):
                keep[i, order[:k]] = True
            return ~keep

        grid = sorted({0, self.n, *torch.linspace(0, self.n, 17).round().long().tolist()})
        hit = self.ok(removed_for(grid)).nonzero()
        first = grid[int(hit.min())] if len(hit) else self.n
        lo = max([g for g in grid if g < first], default=0)
        fine = list(range(lo, first + 1))
        hit = self.ok(removed_for(fine)).nonzero()
        best = fine[int(hit.min())] if len(hit) else first
        return removed_for([best])[0], grid + fine

    def effects(self, removed: torch.Tensor) -> torch.Tensor:
        """``[n]``: for each kept unit, the drop in faithfulness when it alone is also removed."""
        kept = (~removed).nonzero()[:, 0]
        out = torch.zeros(self.n)
        if len(kept):
            trial = removed.repeat(len(kept), 1)
            trial[torch.arange(len(kept)), kept] = True
            base = self.recovered(removed[None])[0]
            out[kept] = (base - self.recovered(trial)).float()
        return out
