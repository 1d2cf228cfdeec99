"""Automatic circuit discovery: the smallest set of nodes or edges that does the task.

Methods (:data:`METHODS`):

- ``exact``: ACDC-style greedy pruning from the output backwards. Stage by stage
  (:func:`comp.circuits.graph.stage`, logits first), every candidate of the stage is
  removed alone, on top of what is already removed, in one batched pass; candidates are
  then removed in order of least harm, all prefixes of that order in a second pass, and
  the longest prefix that keeps the faithfulness target is removed for good.
- ``eap`` / ``eap-ig``: edges are ranked by attribution patching (the gradient at the
  clean run; integrated along clean -> ablated for ``eap-ig``), nodes by the sum of their
  outgoing edges; the smallest top-``k`` set that reaches the target *by exact
  patching* is the circuit, and how far attribution and exact patching disagree is
  reported (:class:`Attribution`).

Faithfulness is the share of the logit difference recovered by the circuit alone, with
everything else ablated: ``(m(circuit) - m(nothing)) / (m(model) - m(nothing))``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.ablate import chance
from comp.circuits.circuit_eval import METRICS, EdgeEvaluator, Evaluator, NodeEvaluator
from comp.circuits.data import analysis_groups, load_for_analysis
from comp.circuits.graph import Graph, Node
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.provenance import recorded

Level = Literal["nodes", "edges"]
Method = Literal["exact", "eap", "eap-ig"]
Ablation = Literal["mean", "resample"]
LEVELS: tuple[str, ...] = ("nodes", "edges")
METHODS: tuple[str, ...] = ("exact", "eap", "eap-ig")
ABLATIONS: tuple[str, ...] = ("mean", "resample")
IG_STEPS = 5  # eap-ig: gradient averaged at alpha = 0, 1/5, ..., 4/5 (a left Riemann sum)
BASELINE = 0.9  # a model below this final-answer accuracy gets a warning
SOLVES_MARGIN = 0.1  # ... and one within this of chance is refused


@dataclass
class Scores:
    """A model, a circuit or a knocked-out model: the metrics of :mod:`comp.circuits.circuit_eval`."""

    acc_answer: float
    acc_cot: float
    logit_diff: float
    recovered: float  # share of the full model's logit difference over the all-ablated model's


@dataclass
class Attribution:
    """How far attribution patching and exact patching disagree (``eap`` / ``eap-ig`` only)."""

    chosen: int  # units in the smallest top-k set that reaches the target by exact patching
    dropped: list[str]  # ... that exact greedy pruning of that set (the verification) removed
    predicted_recovered: float  # the verified circuit's faithfulness by the linear estimate
    exact_recovered: float  # ... by exact patching
    spearman: float  # rank correlation of attribution scores and exact single-unit effects
    sizes_tried: list[int] = field(default_factory=list)


@dataclass
class CircuitResult:
    """What ``comp circuit`` finds (serialised with ``asdict``)."""

    run: str
    task: str
    level: str
    method: str
    ablation: str
    target: float
    lengths: list[int]
    n: int
    seed: int
    split_positions: bool
    nodes: list[str]  # kept nodes (labels), logits included
    edges: list[dict]  # kept edges: sender, receiver, cls, label, effect
    effects: dict[str, float]  # each kept unit: drop in `recovered` when it alone is removed from the circuit
    n_nodes: int
    n_nodes_total: int
    n_edges: int
    n_edges_total: int
    model: Scores
    circuit: Scores  # faithfulness: the circuit alone
    knocked_out: Scores  # completeness: the model without the circuit
    seconds: float
    attribution: "Attribution | None" = None
    warning: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_options(level: str, method: str, ablation: str, target: float) -> None:
    if level not in LEVELS:
        raise CompError(f"unknown --level {level!r}; choose one of: {', '.join(LEVELS)}")
    if method not in METHODS:
        raise CompError(f"unknown --method {method!r}; choose one of: {', '.join(METHODS)}")
    if ablation not in ABLATIONS:
        raise CompError(f"unknown --ablation {ablation!r}; choose one of: {', '.join(ABLATIONS)}")
    if not 0 < target <= 1:
        raise CompError(f"--faithfulness {target} is outside (0, 1]; give the share of the logit difference to keep, e.g. 0.95")


class Pruner:
    """Candidates scored against the full and the all-ablated model."""

    def __init__(self, ev: Evaluator):
        self.ev, self.n = ev, len(ev.units)
        ends = ev.evaluate(torch.stack([torch.zeros(self.n), torch.ones(self.n)]))  # [2, 3]
        self.full, self.empty = ends[0], ends[1]
        span = float(self.full[0] - self.empty[0])
        if abs(span) < 1e-9:
            raise CompError("ablating every component leaves the logit difference unchanged: nothing to discover")
        self.span = span

    def recovered(self, removed: torch.Tensor) -> torch.Tensor:
        """``[K]`` faithfulness of each candidate (a row of ``removed``)."""
        return (self.ev.evaluate(removed)[:, 0] - self.empty[0]) / self.span

    def scores(self, removed: torch.Tensor) -> Scores:
        r = self.ev.evaluate(removed[None])[0]
        return Scores(acc_answer=float(r[1]), acc_cot=float(r[2]), logit_diff=float(r[0]),
                      recovered=float((r[0] - self.empty[0]) / self.span))

    def greedy(self, target: float, removed: "torch.Tensor | None" = None) -> torch.Tensor:
        """``[n]`` bool: what exact greedy pruning removes (module docstring), starting
        from ``removed`` (default: nothing)."""
        removed = torch.zeros(self.n, dtype=torch.bool) if removed is None else removed.clone()
        stages = torch.tensor([self.ev.stage(u) for u in self.ev.units])
        for st in sorted(set(stages.tolist()), reverse=True):
            cand = ((stages == st) & ~removed).nonzero()[:, 0]
            if not len(cand):
                continue
            alone = removed.repeat(len(cand), 1)  # [K, n]
            alone[torch.arange(len(cand)), cand] = True
            order = cand[torch.argsort(self.recovered(alone), descending=True, stable=True)]
            prefixes = removed.repeat(len(order), 1)
            prefixes[:, order] = torch.ones(len(order), len(order), dtype=torch.bool).tril()
            ok = (self.recovered(prefixes) >= target - 1e-6).nonzero()
            if len(ok):
                removed[order[: int(ok.max()) + 1]] = True
        return removed

    def top_k(self, importance: torch.Tensor, target: float) -> tuple[torch.Tensor, list[int]]:
        """The smallest set of the most important units reaching ``target`` by exact patching:
        sizes on a grid, then every size between the last miss and the first hit."""
        order = torch.argsort(importance, descending=True, stable=True)

        def removed_for(sizes: list[int]) -> torch.Tensor:
            keep = torch.zeros(len(sizes), self.n, dtype=torch.bool)
            for i, k in enumerate(sizes):
                keep[i, order[:k]] = True
            return ~keep

        grid = sorted({0, self.n, *torch.linspace(0, self.n, 17).round().long().tolist()})
        hit = (self.recovered(removed_for(grid)) >= target - 1e-6).nonzero()
        first = grid[int(hit.min())] if len(hit) else self.n
        lo = max([g for g in grid if g < first], default=0)
        fine = list(range(lo, first + 1))
        hit = (self.recovered(removed_for(fine)) >= target - 1e-6).nonzero()
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
            out[kept] = base - self.recovered(trial)
        return out


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float(ra @ rb) / den if den else 0.0


def attribution_ranking(model, graph: Graph, groups, ablation: str, method: str, units: list) -> torch.Tensor:
    """Attribution scores (effect on the logit difference of removing each unit), per edge;
    summed over each node's outgoing edges when ``units`` are nodes."""
    alphas = [0.0] if method == "eap" else [i / IG_STEPS for i in range(IG_STEPS)]
    edge_ev = EdgeEvaluator(model, graph, groups, ablation)
    scores = edge_ev.attribution(alphas)
    if units and isinstance(units[0], Node):
        index = {u: i for i, u in enumerate(units)}
        node_scores = torch.zeros(len(units))
        for e, s in zip(edge_ev.units, scores):
            node_scores[index[Node(e.sender, e.cls)]] += s
        return node_scores
    return scores


def discover(model, groups, level: Level = "nodes", method: Method = "exact", ablation: Ablation = "mean", target: float = 0.95,
             split_positions: bool = True, max_rows: int = 0, require_solved: bool = True) -> dict:
    """Find a circuit on ``groups`` (:func:`comp.circuits.data.analysis_groups`): the fields
    of :class:`CircuitResult` that depend on the model only. ``require_solved=False`` skips
    the check that the model solves its task (benchmarks time random models)."""
    check_options(level, method, ablation, target)
    t0 = time.perf_counter()
    graph = Graph.of(model, split_positions)
    ev = (NodeEvaluator if level == "nodes" else EdgeEvaluator)(model, graph, groups, ablation, max_rows)
    pruner = Pruner(ev)
    full = pruner.scores(torch.zeros(pruner.n, dtype=torch.bool))
    warning = _check_solves(full, groups) if require_solved else ""
    attribution = None
    if method == "exact":
        removed = pruner.greedy(target)
    else:
        scores = attribution_ranking(model, graph, groups, ablation, method, ev.units)
        chosen, sizes = pruner.top_k(scores.abs(), target)
        removed = pruner.greedy(target, chosen)  # verification: exact pruning of the chosen set
        alone = (ev.each_alone()[:, 0] - pruner.empty[0]) / pruner.span
        exact_effects = alone - 1.0  # [n] change in faithfulness, each unit removed alone
        attribution = Attribution(
            chosen=int((~chosen).sum()), dropped=[u.label for u, a, b in zip(ev.units, chosen, removed) if b and not a],
            predicted_recovered=float(1 + scores[removed].sum() / pruner.span),
            exact_recovered=float(pruner.recovered(removed[None])[0]),
            spearman=_spearman(scores, exact_effects), sizes_tried=sizes)
    effects = pruner.effects(removed)
    kept = [u for u, r in zip(ev.units, removed) if not r]
    nodes, edges = _circuit(graph, level, kept)
    return dict(
        level=level, method=method, ablation=ablation, target=target, split_positions=split_positions,
        nodes=sorted(n.label for n in nodes) + ["logits"],
        edges=[{"sender": e.sender, "receiver": e.receiver, "cls": e.cls, "label": e.label,
                "effect": float(effects[ev.units.index(e)]) if level == "edges" else None} for e in edges],
        effects={u.label: float(effects[i]) for i, u in enumerate(ev.units) if not removed[i]},
        n_nodes=len(nodes) + 1, n_nodes_total=len(graph.nodes) + 1, n_edges=len(edges), n_edges_total=len(graph.edges),
        model=full, circuit=pruner.scores(removed), knocked_out=pruner.scores(~removed),
        attribution=attribution, warning=warning, seconds=time.perf_counter() - t0,
    )


def _circuit(graph: Graph, level: str, kept: list) -> tuple[list, list]:
    """Kept nodes and edges: at node level, the edges among kept nodes; at edge level, the
    nodes that kept edges leave from."""
    if level == "nodes":
        names = {(n.name, n.cls) for n in kept}
        heads = {n.name for n in kept}

        def reaches(e) -> bool:  # a head's k and v read other positions than its output's
            if e.receiver == "logits":
                return True
            return e.receiver_node in heads if e.receiver[-2:] in (".k", ".v") else (e.receiver_node, e.cls) in names

        return kept, [e for e in graph.edges if (e.sender, e.cls) in names and reaches(e)]
    return sorted({Node(e.sender, e.cls) for e in kept}, key=graph.nodes.index), kept


def _check_solves(full: Scores, groups) -> str:
    floor = chance(groups)
    if full.acc_answer <= floor + SOLVES_MARGIN:
        raise CompError(f"this model does not solve its task (final-answer accuracy {full.acc_answer:.3f}, chance "
                        f"{floor:.3f}): there is no circuit to find; train it longer")
    if full.acc_answer < BASELINE:
        return (f"the model's final-answer accuracy {full.acc_answer:.3f} is below {BASELINE}: "
                "the circuit explains a model that does not solve its task")
    return ""


@recorded
def discover_run(ckpt: str, level: Level = "nodes", method: Method = "exact", ablation: Ablation = "mean", target: float = 0.95,
                 lengths: str = "", n: int = N_SEQUENCES, seed: int = EVAL_SEED, split_positions: bool = True,
                 device: str = "cpu") -> CircuitResult:
    """:func:`discover` on a run's evaluation sets (``n`` sequences per length)."""
    check_options(level, method, ablation, target)
    run, wanted = load_for_analysis(ckpt, lengths, device)
    groups = analysis_groups(run.task, wanted, n, seed, device)
    found = discover(run.model, groups, level, method, ablation, target, split_positions)
    return CircuitResult(run=run.name, task=run.config.task.name, lengths=wanted, n=n, seed=seed, **found)


__all__ = ["METRICS", "CircuitResult", "discover", "discover_run"]
