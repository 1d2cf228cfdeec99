"""Named circuit hypotheses, each tested with numbers: score, necessity, sufficiency, verdict.

A :class:`Hypothesis` says which kind of component plays which role, the score that
finds it, and how to test it. Testing one (:func:`assess_hypothesis`):

1. **score**: every candidate (heads or MLPs in the layers asked, ``--layers``) is
   scored; the group that plays the role is found from the scores and ablations
   (:func:`comp.circuits.roles.find_group`: one component, or several that share the
   role) and its score, the members' scores summed, must reach ``Thresholds.score``;
2. **necessity**: ablating the group (the hypothesis's ablation method) should drop
   final-answer accuracy to chance;
3. **sufficiency**: ablating (mean, or resample) every component outside the circuit
   (the group and the groups found for its partners in ``circuit``) should keep the
   accuracy; the share of the logit difference the circuit recovers is reported with it;
4. **verdict**: ``supported`` when all three hold; ``refuted`` when the score test fails
   or ablating the group does not hurt; ``inconclusive`` otherwise, or when the model
   does not solve the task in the first place. The reason names the test that failed,
   the components and the number against its threshold, in one line.

The ``paper_circuit`` hypothesis (kind ``circuit``) tests the Iteration Head paper's whole
circuit as one: each of its roles (EoI anchor, position MLP, iteration head, accumulator
MLP) must be found, the union is ablated for necessity and kept alone for sufficiency.

Scores: head hypotheses use :mod:`comp.circuits.heads`; ``parity_accumulator`` uses
activation patching (:mod:`comp.circuits.patching`): patching the MLP's clean output at
the position predicting the changed answer, into a run with one input flipped;
``position_mlp`` uses :func:`comp.circuits.roles.iteration_drop`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.ablate import METRICS, ablate_sets, ablated_totals, accuracy_sums, chance
from comp.circuits.circuit_eval import answer_scores
from comp.circuits.components import Component, heads, mlps
from comp.circuits.data import Group, analysis_groups, load_for_analysis
from comp.circuits.heads import SCORES, head_scores
from comp.circuits.patching import LogitDiff, Pair, make_pair, patch_mlp_out
from comp.circuits.results import (
    Accuracy,
    Assessment,
    Evidence,
    HypothesisKind,
    HypothesisTest,
    Necessity,
    NecessityResult,
    SufficiencyResult,
    Verdict,
)
from comp.circuits.roles import (
    Found,
    LayerChoice,
    Placement,
    check_layers,
    find_group,
    in_layers,
    iteration_drop,
    layers_label,
)
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.provenance import recorded
from comp.tasks import member_task

ALL = "all"  # test every hypothesis of the registry
ScoreName = Literal["prev_token", "iteration", "iteration_frac", "eoi_anchor", "bos", "self", "patch_at_query",
                    "iteration_drop", "roles"]
SufficiencyAblation = Literal["mean", "resample"]
SUFFICIENCY_ABLATIONS: tuple[SufficiencyAblation, ...] = ("mean", "resample")
PARITY_CIRCUIT = ("eoi_anchor", "prev_token", "position_mlp", "iteration_head", "parity_accumulator")
PAPER_ROLES = ("eoi_anchor", "position_mlp", "iteration_head", "parity_accumulator")


@dataclass(frozen=True)
class Hypothesis:
    """What a component does and how to test it."""

    name: str
    claim: str  # which components do what
    kind: HypothesisKind  # "head", "mlp", or "circuit" (the roles of `circuit`, tested as one)
    score: ScoreName  # a head score of comp.circuits.heads, "patch_at_query" or "iteration_drop" (MLPs)
    layers: Placement  # the paper's placement (--layers paper): "early" (before the last layer), "late", "any"
    ablation: str  # ablation method of the necessity test (a key of comp.circuits.ablate.ABLATIONS)
    circuit: tuple[str, ...]  # the hypotheses whose components make the circuit of the sufficiency test


HYPOTHESES: dict[str, Hypothesis] = {
    h.name: h
    for h in [
        Hypothesis(
            "prev_token",
            "a head attends from each position i to i-1 and carries s_{t-1}",
            "head", "prev_token", "any", "mean", PARITY_CIRCUIT,
        ),
        Hypothesis(
            "iteration_head",
            "a head (or a group of heads) attends from the position predicting s_t to x_t",
            "head", "iteration", "late", "mean", PARITY_CIRCUIT,
        ),
        Hypothesis(
            "eoi_anchor",
            "an early head attends to EoI from the answer positions, to locate the input",
            # its output depends on positions only: mean or resample ablation at one length
            # keeps it intact, so it is tested by zeroing
            "head", "eoi_anchor", "early", "zero", PARITY_CIRCUIT,
        ),
        Hypothesis(
            "position_mlp",
            "an MLP before the iteration head computes which input to read: zeroing it takes the iteration "
            "heads' attention off x_t",
            # positions only, as eoi_anchor: tested by zeroing
            "mlp", "iteration_drop", "early", "zero", PARITY_CIRCUIT,
        ),
        Hypothesis(
            "parity_accumulator",
            "the MLP after the iteration head computes s_t = s_{t-1} xor x_t at the predicting position",
            "mlp", "patch_at_query", "late", "mean", PARITY_CIRCUIT,
        ),
        Hypothesis(
            "paper_circuit",
            "the paper's circuit: EoI anchor -> position MLP -> iteration head -> accumulator MLP, sufficient alone",
            "circuit", "roles", "any", "mean", PAPER_ROLES,
        ),
    ]
}


@dataclass(frozen=True)
class Thresholds:
    """The numbers a verdict is decided by (final-answer accuracy, teacher-forced)."""

    score: float = 0.5  # a group plays the role when its score (members' scores summed) reaches this
    baseline: float = 0.9  # the intact model must reach this accuracy for any verdict
    chance_margin: float = 0.1  # necessary: ablated accuracy <= chance + this
    no_effect: float = 0.05  # not necessary at all: ablated accuracy >= baseline - this
    sufficiency: float = 0.1  # sufficient: circuit-only accuracy >= baseline - this
    member: float = 0.25  # a component can join a role's group when its score reaches this (and half the best)
    member_effect: float = 0.01  # a member whose leaving moves the group's ablated accuracy and loss less leaves


@dataclass(frozen=True)
class HypothesisRequest:
    """How hypotheses are tested: where their components are looked for, the thresholds, and
    what replaces the components outside the circuit in the sufficiency test."""

    layers: LayerChoice = "any"
    thresholds: Thresholds = field(default_factory=Thresholds)
    sufficiency_ablation: SufficiencyAblation = "mean"


def check_sufficiency_ablation(method: str) -> SufficiencyAblation:
    if method not in SUFFICIENCY_ABLATIONS:
        raise CompError(f"unknown --ablation {method!r} for the sufficiency test; choose one of: "
                        f"{', '.join(SUFFICIENCY_ABLATIONS)}")
    return method  # type: ignore[return-value]


def check_hypothesis(name: str) -> Hypothesis:
    if name not in HYPOTHESES:
        raise CompError(f"unknown hypothesis {name!r}; choose one of: {', '.join([*HYPOTHESES, ALL])}")
    return HYPOTHESES[name]


def _candidates(model, h: Hypothesis, layers: LayerChoice) -> list[Component]:
    pool = heads(model) if h.kind == "head" else mlps(model)
    found = [c for c in pool if in_layers(c.layer, layers, h.layers, model.cfg.n_layers)]
    if not found:
        where = "" if layers == "any" else f" in layers {layers_label(layers)}"
        raise CompError(f"this model has no {h.kind}{where} to test {h.name!r} on (attention-only?); "
                        "pick another hypothesis or other --layers")
    return found


def component_scores(model, groups: list[Group], pair: Pair, member: float = Thresholds.member) -> dict[str, dict[str, float]]:
    """Every score a hypothesis can use: ``{score name: {component label: value}}``; the
    patching scores come from ``pair`` (clean and corrupted sequences); ``member``: the
    iteration score of the heads whose attention ``iteration_drop`` follows."""
    out: dict[str, dict[str, float]] = {}
    for row in head_scores(model, groups):
        for name in SCORES:
            out.setdefault(name, {})[row.component] = getattr(row, name)
    if not model.cfg.attn_only:
        metric = LogitDiff.for_pair(model, pair)
        _, clean = model.run_with_cache(pair.clean.tokens, names_filter=lambda n: n.endswith("hook_mlp_out"))
        sweep = patch_mlp_out(model, pair.corrupted.tokens, clean, metric)  # [layer, pos]
        out["patch_at_query"] = {Component(layer).label: sweep[layer, metric.last_pos].item() for layer in range(len(sweep))}
        out["iteration_drop"] = iteration_drop(model, groups, member)
    return out


class RoleFinder:
    """Finds each role's group once per model (roles are partners of several hypotheses)."""

    def __init__(self, model, groups: list[Group], scores: dict, request: HypothesisRequest):
        self.model, self.groups, self.scores, self.request = model, groups, scores, request
        self.thr, self.chance = request.thresholds, chance(groups)
        self.found: dict[str, Found] = {}
        self.ablated: dict[tuple, Accuracy] = {}  # (method, frozenset of components) -> accuracy
        self.circuits: dict[tuple, tuple[Accuracy, float]] = {}  # (method, frozenset) -> accuracy, logit diff

    def necessary(self, r: Accuracy) -> bool:
        return r.acc_answer <= self.chance + self.thr.chance_margin

    def ablate(self, sets: list[list[Component]], method: str) -> list[Accuracy]:
        """:func:`ablate_sets`, each set computed once per model (roles share sets)."""
        keys = [(method, frozenset(s)) for s in sets]
        todo = list(dict.fromkeys(k for k in keys if k not in self.ablated))
        if todo:
            self.ablated.update(zip(todo, ablate_sets(self.model, self.groups, [sorted(k[1]) for k in todo], method)))
        return [self.ablated[k] for k in keys]

    def circuit(self, sets: list[list[Component]], method: str) -> list[tuple[Accuracy, float]]:
        """:func:`circuit_scores`, each set computed once per model."""
        keys = [(method, frozenset(s)) for s in sets]
        todo = list(dict.fromkeys(k for k in keys if k not in self.circuits))
        if todo:
            self.circuits.update(zip(todo, circuit_scores(self.model, self.groups, [sorted(k[1]) for k in todo], method)))
        return [self.circuits[k] for k in keys]

    def __call__(self, name: str) -> Found:
        if name not in self.found:
            h = HYPOTHESES[name]
            cands = _candidates(self.model, h, self.request.layers)
            values = {c.label: self.scores[h.score][c.label] for c in cands}
            self.found[name] = find_group(cands, values, lambda sets: self.ablate(sets, h.ablation), self.necessary,
                                          self.thr.member, self.thr.member_effect, name)
        return self.found[name]

    def available(self, name: str) -> bool:
        h = HYPOTHESES[name]
        return h.kind == "head" or not self.model.cfg.attn_only


def circuit_scores(model, groups: list[Group], sets: list[list[Component]], method: str) -> list[tuple[Accuracy, float]]:
    """Accuracy and mean logit difference over answer tokens with each set ablated."""

    def reducer(group: Group):
        acc, diff = accuracy_sums(group), answer_scores(group, group.task.n_classes)
        return lambda logits: torch.cat([acc(logits), diff(logits)[:, :1]], dim=1)

    totals, rows = ablated_totals(model, groups, sets, method, reducer)
    tokens = sum(int(g.batch.loss_mask[:, 1:].sum()) for g in groups)
    return [(Accuracy(**dict(zip(METRICS, (t[:3] / rows).tolist()))), t[3].item() / tokens) for t in totals]


def _names(components) -> str:
    return ", ".join(c.label if isinstance(c, Component) else c for c in components) or "nothing"


def assess_hypothesis(model, name: str, groups: list[Group], scores: dict,
                      request: "HypothesisRequest | Thresholds" = HypothesisRequest(),
                      finder: "RoleFinder | None" = None) -> Evidence:
    """The evidence for one hypothesis on a model (see the module docstring), from
    ``scores`` (:func:`component_scores`) and ablations on ``groups``; a ``finder`` shared
    by several hypotheses finds each role once (and brings its own request)."""
    h = check_hypothesis(name)
    if isinstance(request, Thresholds):
        request = HypothesisRequest(thresholds=request)
    request = finder.request if finder is not None else request
    check_layers(request.layers, model.cfg.n_layers)
    thr = request.thresholds
    find = finder or RoleFinder(model, groups, scores, request)
    roles = [r for r in h.circuit if find.available(r)] if h.kind == "circuit" else [name]
    if h.kind == "circuit" and not roles:
        raise CompError(f"this model has none of the roles of {name!r}; pick another hypothesis")
    found = {r: find(r) for r in roles}
    partners = [p for p in h.circuit if p not in found and find.available(p)]
    circuit = {c for f in found.values() for c in f.group}
    circuit |= {c for p in partners if find(p).score >= thr.score for c in find(p).group}
    chosen = sorted({c for f in found.values() for c in f.group})
    if h.kind == "circuit":
        base, without = find.ablate([[], chosen], h.ablation)
        weakest = min(roles, key=lambda r: found[r].score - thr.score)
        score, members, values = found[weakest].score, [m for r in roles for m in found[r].members], {}
        for r in roles:
            values.update({f"{r}:{k}": v for k, v in scores[HYPOTHESES[r].score].items()})
    else:
        f = found[name]
        base, without, score, members = f.baseline, f.ablated, f.score, f.members
        values = {c.label: scores[h.score][c.label] for c in _candidates(model, h, request.layers)}
    everything = heads(model) + mlps(model)
    outside = [c for c in everything if c not in circuit]
    (only, ld_only), (_, ld_full), (_, ld_none) = find.circuit([outside, [], everything], request.sufficiency_ablation)
    recovered = (ld_only - ld_none) / (ld_full - ld_none) if abs(ld_full - ld_none) > 1e-9 else 0.0
    p_chance = find.chance
    necessity: Necessity = (
        "yes" if find.necessary(without)
        else "no" if without.acc_answer >= base.acc_answer - thr.no_effect else "partial"
    )
    sufficient = only.acc_answer >= base.acc_answer - thr.sufficiency
    verdict, reason = _verdict(h, found, base, without, necessity, only, sufficient, p_chance, request, outside)
    return Evidence(
        hypothesis=name,
        claim=h.claim,
        test=HypothesisTest(score=h.score, layers=layers_label(request.layers), necessity_ablation=h.ablation,
                            sufficiency_ablation=request.sufficiency_ablation),
        components=[c.label for c in chosen],
        members=members,
        roles={r: [c.label for c in found[r].group] for r in roles},
        scores=values,
        score=score,
        baseline=base,
        chance_answer=p_chance,
        necessity=NecessityResult(**asdict(without), result=necessity),
        sufficiency=SufficiencyResult(circuit=[c.label for c in sorted(circuit)],
                                      ablated=[c.label for c in sorted(outside)], **asdict(only),
                                      result="yes" if sufficient else "no", logit_diff=ld_only,
                                      logit_diff_recovered=recovered),
        thresholds=asdict(thr),
        verdict=verdict,
        reason=reason,
    )


def _verdict(h: Hypothesis, found: dict[str, Found], base: Accuracy, without: Accuracy, necessity: Necessity,
             only: Accuracy, sufficient: bool, p_chance: float, request: HypothesisRequest,
             outside: list[Component]) -> tuple[Verdict, str]:
    """The verdict and its one-line reason: the failing test, its components, the number and the threshold."""
    thr = request.thresholds
    group = sorted({c for f in found.values() for c in f.group})
    missing = [r for r, f in found.items() if f.score < thr.score]
    necessity_line = (f"{h.ablation}-ablating {_names(group)} gives final-answer accuracy {without.acc_answer:.3f}")
    chance_line = f"chance + {thr.chance_margin} = {p_chance + thr.chance_margin:.3f}"
    sufficiency_line = (f"sufficiency failed: {request.sufficiency_ablation}-ablating everything outside the "
                        f"circuit ({_names(outside)}) gives {only.acc_answer:.3f} < baseline - {thr.sufficiency} "
                        f"= {base.acc_answer - thr.sufficiency:.3f}")
    if base.acc_answer < thr.baseline:
        return "inconclusive", (f"baseline failed: the intact model reaches only {base.acc_answer:.3f} final-answer "
                                f"accuracy < {thr.baseline}")
    if missing:
        return "refuted", "score failed: " + "; ".join(
            f"{'role ' + r + ': ' if h.kind == 'circuit' else ''}the best {HYPOTHESES[r].kind} group "
            f"{_names(found[r].group)} has {HYPOTHESES[r].score} {found[r].score:.3f} < {thr.score}" for r in missing)
    if necessity == "no":
        return "refuted", (f"necessity failed: {necessity_line} >= baseline - {thr.no_effect} = "
                           f"{base.acc_answer - thr.no_effect:.3f} (no effect)")
    if necessity == "partial":
        extra = "" if sufficient else f"; {sufficiency_line}"
        return "inconclusive", f"necessity failed: {necessity_line} > {chance_line}{extra}"
    if not sufficient:
        return "inconclusive", sufficiency_line
    return "supported", (f"score {min(f.score for f in found.values()):.3f} >= {thr.score}; {necessity_line} <= "
                         f"{chance_line}; the circuit alone keeps {only.acc_answer:.3f} >= "
                         f"{base.acc_answer - thr.sufficiency:.3f}")


def hypothesis_names(spec: str) -> list[str]:
    """``all`` or one registry name, checked."""
    return list(HYPOTHESES) if spec == ALL else [check_hypothesis(spec).name]


@recorded
def assess_run(ckpt: str, hypothesis: str, lengths: str = "", n: int = N_SEQUENCES, seed: int = EVAL_SEED, length: int = 0,
               at: int = 0, member: str = "", device: str = "cpu",
               request: "HypothesisRequest | Thresholds" = HypothesisRequest()) -> Assessment:
    """Test a hypothesis (or ``all``) on a run.
    Patching flips input ``at`` (default: the middle) of sequences of ``length``
    (default: the longest analysed) of task ``member`` (mixtures: default the first)."""
    names = hypothesis_names(hypothesis)
    if isinstance(request, Thresholds):
        request = HypothesisRequest(thresholds=request)
    run, wanted = load_for_analysis(ckpt, lengths, device)
    check_layers(request.layers, run.model.cfg.n_layers)
    groups = analysis_groups(run.task, wanted, n, seed, device)
    pair = make_pair(member_task(run.task, member), length or max(wanted), n, seed, "flip_one", at, device)
    scores = component_scores(run.model, groups, pair, request.thresholds.member)
    finder = RoleFinder(run.model, groups, scores, request)
    if hypothesis == ALL:  # attention-only models have no MLP roles
        names = [x for x in names if HYPOTHESES[x].kind != "mlp" or not run.model.cfg.attn_only]
    return Assessment(run=run.name, task=run.config.task.name, encoding=run.config.model.encoding, lengths=wanted,
                      n=n, seed=seed, patch_length=length or max(wanted), thresholds=asdict(request.thresholds),
                      hypotheses=[assess_hypothesis(run.model, name, groups, scores, request, finder) for name in names])
