"""Automatic circuit discovery: the smallest set of nodes or edges that does the task.

Methods (:data:`METHODS`):

- ``exact``: ACDC-style greedy pruning from the output backwards, batched, then a final
  pass that retries every kept unit (:class:`comp.circuits.pruning.Pruner`).
- ``eap`` / ``eap-ig``: edges are ranked by attribution patching (the gradient at the
  clean run; integrated along clean -> ablated for ``eap-ig``), nodes by the sum of their
  outgoing edges; the smallest top-``k`` set that keeps the targets *by exact
  patching* is the circuit, verified by exact pruning, and how far attribution and exact
  patching disagree is reported (:class:`Attribution`).

What the circuit must keep (:class:`comp.circuits.pruning.Keep`, ``--keep``): the share
of the logit difference recovered by the circuit alone with everything else ablated,
``(m(circuit) - m(nothing)) / (m(model) - m(nothing))`` (``--faithfulness``), and/or the
shares of the full model's final-answer and whole-CoT accuracy.

Pruning sees the *discovery batch* only. Given a *held-out batch* (``holdout``: other
sequences, :func:`discover_run` uses data seed ``seed + HOLDOUT_OFFSET``), the reported
scores (``model``, ``circuit``, ``knocked_out``) are measured there, so they are not fitted
to the data the pruning saw; the discovery batch's are in ``fit``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.ablate import chance
from comp.circuits.budget import budget_warning, limit, trim
from comp.circuits.circuit_eval import METRICS, EdgeEvaluator, NodeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.graph import Graph, Node
from comp.circuits.pruning import ORDERS, Keep, Order, Pruner, Scores, parse_keep
from comp.circuits.swap import repair, swap_pass
from comp.circuits.swap_groups import edge_groups, group_pass
from comp.circuits.swap_plateau import plateau_pass
from comp.circuits.swap_select import choose
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
HOLDOUT_OFFSET = 2  # held-out batch: data seed + 2 (its reference set + 3; discovery uses + 0 and + 1)
VALIDATION_OFFSET = 4  # --swap's validation batch: data seed + 4 (its reference set + 5)
SELECTION_OFFSET = 6  # --select's selection batch: data seed + 6 (its reference set + 7)


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
    target: "float | None"  # the logit-difference share asked (keep["logit"])
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
    model: Scores  # on the held-out batch when there is one (scored_on)
    circuit: Scores  # faithfulness: the circuit alone
    knocked_out: Scores  # completeness: the model without the circuit
    seconds: float
    attribution: "Attribution | None" = None
    warning: str = ""
    keep: dict = field(default_factory=dict)  # the shares pruning had to keep (Keep), on the discovery batch
    scored_on: str = "discovery batch"  # where model / circuit / knocked_out were measured
    holdout_seed: "int | None" = None  # the held-out batch's data seed
    fit: dict = field(default_factory=dict)  # model and circuit Scores on the discovery batch
    order: str = "stages"  # of greedy pruning: stage by stage from the logits, or global
    final_pass_removed: int = 0  # units the final pass removed after the stage-by-stage pass
    node_pass: dict = field(default_factory=dict)  # --order nodes: nodes and edges the node pass kept
    member: str = ""  # the member task of a multi-task run the circuit is found on ("": every member)
    swap: bool = False  # whether the swap pass ran after pruning (comp.circuits.swap)
    swap_moves: list = field(default_factory=list)  # its moves: units removed, unit re-added, margin after
    validation_seed: "int | None" = None  # --swap: the validation batch's data seed
    repaired: list = field(default_factory=list)  # --swap: units re-added so the validation batch keeps the targets
    group_pass: bool = False  # --swap --groups: whether group moves ran after the swap pass (comp.circuits.swap_groups)
    group_moves: list = field(default_factory=list)  # their moves: group, units removed, units re-added, margin after
    plateau: int = 0  # --swap --plateau K: at most K plateau moves, each followed by the swap pass (comp.circuits.swap_plateau)
    plateau_moves: list = field(default_factory=list)  # their moves: unit removed, unit re-added, margin before and after
    selection: dict = field(default_factory=dict)  # --select: the trail scored on the selection batch (comp.circuits.swap_select)
    ref_n: int = 0  # reference sequences per length of every batch (the mean ablation's mean is over them)
    budget: float = 0.0  # --budget: the most units kept, as a share of all (0: no budget; comp.circuits.budget)
    budget_trims: list = field(default_factory=list)  # units removed to fit it: unit, smallest margin after
    ckpt: str = ""  # the run as given (a directory: its absolute path), where comp circuit score finds it

    def to_dict(self) -> dict:
        return asdict(self)


def check_options(level: str, method: str, ablation: str, target: "float | None", order: str = "stages",
                  budget: float = 0.0) -> None:
    if level not in LEVELS:
        raise CompError(f"unknown --level {level!r}; choose one of: {', '.join(LEVELS)}")
    if method not in METHODS:
        raise CompError(f"unknown --method {method!r}; choose one of: {', '.join(METHODS)}")
    if ablation not in ABLATIONS:
        raise CompError(f"unknown --ablation {ablation!r}; choose one of: {', '.join(ABLATIONS)}")
    if order not in ORDERS:
        raise CompError(f"unknown --order {order!r}; choose one of: {', '.join(ORDERS)}")
    if not 0 <= budget <= 1:
        raise CompError(f"--budget {budget} is outside [0, 1]; give the most units to keep as a share of all, e.g. 0.25 (0: no budget)")
    if target is not None and not 0 < target <= 1:
        raise CompError(f"--faithfulness {target} is outside (0, 1]; give the share of the logit difference to keep, e.g. 0.95")


def check_search(swap: bool, group_moves: bool, plateau: int, select: "Keep | None") -> None:
    """The options of the search after pruning (--groups, --plateau, --select) need --swap."""
    if plateau < 0:
        raise CompError(f"--plateau {plateau} is negative; give the most plateau moves to make, e.g. 4 (0: none)")
    for given, flag in ((group_moves, "--groups"), (plateau, "--plateau"), (select is not None, "--select")):
        if given and not swap:
            raise CompError(f"{flag} runs after the swap pass; give --swap too")


def check_ref_n(ref_n: int, n: int, ablation: str) -> int:
    """The reference rows per length (0: ``n``). A mean ablation takes any number (the mean of
    32 sequences is a noisy estimate: its error perturbs every ablated unit); a resample
    ablation replaces row for row, so only ``n``."""
    if ref_n < 0:
        raise CompError(f"--ref-n {ref_n} is negative; give the reference sequences per length, e.g. 256 (0: as many as --n)")
    ref_n = ref_n or n
    if ablation == "resample" and ref_n != n:
        raise CompError(f"--ref-n {ref_n} with --ablation resample: a resample ablation replaces row for row, so its "
                        f"reference set has --n ({n}) rows; drop --ref-n or use --ablation mean")
    return ref_n


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


def discover(model, groups, level: Level = "nodes", method: Method = "exact", ablation: Ablation = "mean",
             target: "float | None" = 0.95, split_positions: bool = True, max_rows: int = 0, require_solved: bool = True,
             keep: "Keep | None" = None, holdout=None, order: Order = "stages", swap: bool = False,
             validation=None, group_moves: bool = False, plateau: int = 0, select: "Keep | None" = None,
             selection=None, selection_seed: int = -1, budget: float = 0.0) -> dict:
    """Find a circuit on ``groups`` (:func:`comp.circuits.data.analysis_groups`): the fields
    of :class:`CircuitResult` that depend on the model only. ``keep``: what the circuit must
    keep (default: ``target`` as the logit-difference share); ``holdout``: groups of other
    sequences the reported scores are measured on (module docstring); ``order``: of greedy
    pruning (:meth:`comp.circuits.pruning.Pruner.greedy`); ``swap``: then the swap pass
    (:mod:`comp.circuits.swap`), checked on ``validation`` (groups of other sequences) if
    given; ``group_moves``: then group moves alternating with it (:mod:`comp.circuits.swap_groups`);
    ``plateau``: then at most that many plateau moves (:mod:`comp.circuits.swap_plateau`);
    ``select`` and ``selection`` (groups of other sequences, data seed ``selection_seed``): the
    circuit is the smallest of the search's trail keeping ``select`` there (:mod:`comp.circuits.swap_select`);
    ``budget``: then at most that share of the units (:mod:`comp.circuits.budget`). ``require_solved=False``
    skips the check that the model solves its task (benchmarks time random models)."""
    check_options(level, method, ablation, target, order, budget)
    check_search(swap, group_moves, plateau, select)
    keep = keep or Keep(logit=target)
    t0 = time.perf_counter()
    graph = Graph.of(model, split_positions)
    evaluator = NodeEvaluator if level == "nodes" else EdgeEvaluator
    ev = evaluator(model, graph, groups, ablation, max_rows)
    pruner = Pruner(ev, keep)
    full = pruner.scores(torch.zeros(pruner.n, dtype=torch.bool))
    warning = _check_solves(full, groups) if require_solved else ""
    attribution = None
    start, node_pass = None, {}
    if level == "edges" and order == "nodes":  # node-level pruning first, then edges inside the surviving nodes
        start, node_pass = _node_pass(model, graph, groups, ablation, max_rows, keep, ev, pruner)
    if method == "exact":
        removed = pruner.greedy(start, order=order)
    else:
        scores = attribution_ranking(model, graph, groups, ablation, method, ev.units)
        chosen, sizes = pruner.top_k(scores.abs())
        removed = pruner.greedy(chosen if start is None else chosen | start, order=order)  # verification: exact pruning
        alone = (ev.each_alone()[:, 0] - pruner.empty[0]) / pruner.span
        exact_effects = alone - 1.0  # [n] change in faithfulness, each unit removed alone
        attribution = Attribution(
            chosen=int((~chosen).sum()), dropped=[u.label for u, a, b in zip(ev.units, chosen, removed) if b and not a],
            predicted_recovered=float(1 + scores[removed].sum() / pruner.span),
            exact_recovered=float(pruner.recovered(removed[None])[0]),
            spearman=_spearman(scores, exact_effects), sizes_tried=sizes)
    moves, repaired, check, made, flat, chosen = [], [], None, [], [], None
    if swap:
        trail = [removed.clone()]  # every circuit the search passes through (--select chooses among them)
        check = None if validation is None else Pruner(evaluator(model, graph, validation, ablation, max_rows), keep)
        if check is not None:
            removed, repaired = repair(check, removed, trail)
        removed, moves = swap_pass(pruner, removed, check, trail=trail)
        if group_moves:
            removed, more, made = group_pass(pruner, removed, edge_groups(ev.units), check, trail=trail)
            moves += more
        if plateau:
            removed, more, flat = plateau_pass(pruner, removed, check, plateau, trail=trail)
            moves += more
        if select is not None and selection is not None:
            removed, chosen = choose(Pruner(evaluator(model, graph, selection, ablation, max_rows), select), trail,
                                     selection_seed)
            if not chosen.held:
                warning = (warning + "; " if warning else "") + (
                    "no circuit on the search's trail keeps the --select thresholds on the selection batch: "
                    "the search's last circuit is reported")
    trims = []
    if budget:
        most = limit(budget, pruner.n)
        removed, trims = trim(pruner, removed, check, most)
        note = budget_warning(trims, most)
        if note:
            warning = (warning + "; " if warning else "") + note
    effects = pruner.effects(removed)
    kept = [u for u, r in zip(ev.units, removed) if not r]
    nodes, edges = _circuit(graph, level, kept)
    fit = dict(model=full, circuit=pruner.scores(removed))
    if check is not None:  # --swap: the circuit on its validation batch
        fit["validation"] = check.scores(removed)
    scorer = pruner if holdout is None else Pruner(evaluator(model, graph, holdout, ablation, max_rows), keep)
    return dict(
        level=level, method=method, ablation=ablation, target=keep.logit, keep=keep.to_dict(), order=order,
        split_positions=split_positions, nodes=sorted(n.label for n in nodes) + ["logits"],
        edges=[{"sender": e.sender, "receiver": e.receiver, "cls": e.cls, "label": e.label,
                "effect": float(effects[ev.units.index(e)]) if level == "edges" else None} for e in edges],
        effects={u.label: float(effects[i]) for i, u in enumerate(ev.units) if not removed[i]},
        n_nodes=len(nodes) + 1, n_nodes_total=len(graph.nodes) + 1, n_edges=len(edges), n_edges_total=len(graph.edges),
        model=scorer.scores(torch.zeros_like(removed)), circuit=scorer.scores(removed), knocked_out=scorer.scores(~removed),
        fit=fit, scored_on="discovery batch" if holdout is None else "held-out batch (other sequences than pruning saw)",
        final_pass_removed=pruner.retried, node_pass=node_pass, swap=swap, swap_moves=[asdict(m) for m in moves],
        repaired=repaired, group_pass=group_moves, group_moves=[asdict(m) for m in made],
        plateau=plateau, plateau_moves=[asdict(m) for m in flat], selection=asdict(chosen) if chosen else {},
        budget=budget, budget_trims=[asdict(t) for t in trims],
        attribution=attribution, warning=warning, seconds=time.perf_counter() - t0,
    )


def _node_pass(model, graph: Graph, groups, ablation: str, max_rows: int, keep: Keep, ev, pruner: Pruner
               ) -> tuple["torch.Tensor | None", dict]:
    """``--order nodes`` at edge level: node-level greedy pruning (stage order) under ``keep``;
    the edges outside the surviving nodes' circuit (:func:`_circuit`) as edge pruning's start
    ``[n_edges]`` bool, or None when that circuit misses a target under edge patching."""
    node_pruner = Pruner(NodeEvaluator(model, graph, groups, ablation, max_rows), keep)
    node_removed = node_pruner.greedy(order="stages")
    kept_nodes = [u for u, r in zip(node_pruner.ev.units, node_removed) if not r]
    inside = set(_circuit(graph, "nodes", kept_nodes)[1])
    start = torch.tensor([e not in inside for e in ev.units])
    ok = bool(pruner.ok(start[None])[0])
    info = {"nodes": len(kept_nodes) + 1, "edges": len(inside), "kept_targets": ok}
    return (start if ok else None), info


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
def discover_run(ckpt: str, level: Level = "nodes", method: Method = "exact", ablation: Ablation = "mean",
                 target: "float | None" = 0.95, lengths: str = "", n: int = N_SEQUENCES, seed: int = EVAL_SEED,
                 split_positions: bool = True, device: str = "cpu", keep: "Keep | str | None" = None,
                 holdout: bool = True, order: Order = "stages", member: str = "", swap: bool = False,
                 group_moves: bool = False, plateau: int = 0, select: "Keep | str | None" = None,
                 ref_n: int = 0, budget: float = 0.0) -> CircuitResult:
    """:func:`discover` on a run's evaluation sets (``n`` sequences per length, data seed
    ``seed``), scored on a held-out batch (seed ``seed + HOLDOUT_OFFSET``) unless
    ``holdout=False``. ``keep``: a :class:`Keep` or a ``--keep`` spec (``answer=0.95,cot=0.9``).
    ``member``: of a multi-task run, the circuit of that member task alone (default: of every member);
    ``swap``: the swap pass after pruning, checked on a validation batch (seed ``seed + VALIDATION_OFFSET``);
    ``group_moves``: with group moves (:mod:`comp.circuits.swap_groups`); ``plateau``: at most that
    many plateau moves; ``select``: a :class:`Keep` or a spec, the circuit chosen on a selection batch
    (seed ``seed + SELECTION_OFFSET``, :mod:`comp.circuits.swap_select`); ``ref_n``: reference
    sequences per length of every batch (default 0: ``n``), see :func:`check_ref_n`; ``budget``: at
    most that share of the units (:mod:`comp.circuits.budget`)."""
    check_options(level, method, ablation, target, order, budget)
    ref_n = check_ref_n(ref_n, n, ablation)
    if isinstance(keep, str):
        keep = parse_keep(keep, target if keep.strip() == "" else None)
    if isinstance(select, str):
        select = parse_keep(select, flag="--select") if select.strip() else None
    check_search(swap, group_moves, plateau, select)
    run, wanted = load_for_analysis(ckpt, lengths, device)
    task = analysed_task(run.task, member)
    groups = analysis_groups(task, wanted, n, seed, device, ref_n)
    held = analysis_groups(task, wanted, n, seed + HOLDOUT_OFFSET, device, ref_n) if holdout else None
    valid = analysis_groups(task, wanted, n, seed + VALIDATION_OFFSET, device, ref_n) if swap else None
    chosen = analysis_groups(task, wanted, n, seed + SELECTION_OFFSET, device, ref_n) if select is not None else None
    found = discover(run.model, groups, level, method, ablation, target, split_positions, keep=keep, holdout=held,
                     order=order, swap=swap, validation=valid, group_moves=group_moves, plateau=plateau, select=select,
                     selection=chosen, selection_seed=seed + SELECTION_OFFSET, budget=budget)
    where = str(Path(ckpt).resolve()) if Path(ckpt).is_dir() else ckpt
    return CircuitResult(run=run.name, ckpt=where, task=run.config.task.name, lengths=wanted, n=n, seed=seed,
                         holdout_seed=seed + HOLDOUT_OFFSET if holdout else None, member=member,
                         validation_seed=seed + VALIDATION_OFFSET if swap else None, ref_n=ref_n, **found)


__all__ = ["METRICS", "CircuitResult", "Keep", "Pruner", "Scores", "check_ref_n", "discover", "discover_run", "parse_keep"]
