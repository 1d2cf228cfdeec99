"""Named circuit hypotheses, each tested with numbers: score, necessity, sufficiency, verdict.

A :class:`Hypothesis` says which kind of component plays which role, the score that
finds it, and how to test it. Testing one (:func:`test_hypothesis`):

1. **score**: every candidate (heads or MLPs in the allowed layers) is scored; those at
   or above ``Thresholds.score`` are the hypothesis's components (if none is, the best
   one is kept and the score test fails);
2. **necessity**: ablating those components (the hypothesis's ablation method) should
   drop final-answer accuracy to chance;
3. **sufficiency**: mean-ablating every component outside the circuit (the components
   of this hypothesis and its partners in ``circuit``) should keep the accuracy;
4. **verdict**: ``supported`` when all three hold; ``refuted`` when no component scores
   high enough or ablating them does not hurt; ``inconclusive`` otherwise, or when the
   model does not solve the task in the first place.

Scores: head hypotheses use :mod:`comp.circuits.heads`; ``parity_accumulator`` uses
activation patching (:mod:`comp.circuits.patching`): patching the MLP's clean output at
the position predicting the changed answer, into a run with one input flipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from comp.circuits.ablate import ablate_sets, chance
from comp.circuits.components import Component, heads, mlps
from comp.circuits.data import Group, analysis_groups, load_for_analysis
from comp.circuits.heads import SCORES, head_scores
from comp.circuits.patching import LogitDiff, Pair, make_pair, patch_mlp_out
from comp.circuits.results import (
    Assessment,
    ComponentKind,
    Evidence,
    HypothesisTest,
    Necessity,
    NecessityResult,
    SufficiencyResult,
    Verdict,
)
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.tasks import member_task

ALL = "all"  # test every hypothesis of the registry
ScoreName = Literal["prev_token", "iteration", "iteration_frac", "eoi_anchor", "bos", "self", "patch_at_query"]
Layers = Literal["early", "late", "any"]
PARITY_CIRCUIT = ("eoi_anchor", "prev_token", "iteration_head", "parity_accumulator")


@dataclass(frozen=True)
class Hypothesis:
    """What a component does and how to test it."""

    name: str
    claim: str  # which components do what
    kind: ComponentKind  # "head" or "mlp"
    score: ScoreName  # a head score of comp.circuits.heads, or "patch_at_query" (MLPs)
    layers: Layers  # where to look: "early" (before the last layer), "late" (after the first), "any"
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
            "a later-layer head attends from the position predicting s_t to x_t",
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
            "parity_accumulator",
            "the MLP after the iteration head computes s_t = s_{t-1} xor x_t at the predicting position",
            "mlp", "patch_at_query", "late", "mean", PARITY_CIRCUIT,
        ),
    ]
}


@dataclass(frozen=True)
class Thresholds:
    """The numbers a verdict is decided by (final-answer accuracy, teacher-forced)."""

    score: float = 0.5  # a component plays the role when its score reaches this
    baseline: float = 0.9  # the intact model must reach this accuracy for any verdict
    chance_margin: float = 0.1  # necessary: ablated accuracy <= chance + this
    no_effect: float = 0.05  # not necessary at all: ablated accuracy >= baseline - this
    sufficiency: float = 0.1  # sufficient: circuit-only accuracy >= baseline - this


def check_hypothesis(name: str) -> Hypothesis:
    if name not in HYPOTHESES:
        raise CompError(f"unknown hypothesis {name!r}; choose one of: {', '.join([*HYPOTHESES, ALL])}")
    return HYPOTHESES[name]


def _candidates(model, h: Hypothesis) -> list[Component]:
    pool = heads(model) if h.kind == "head" else mlps(model)
    last = model.cfg.n_layers - 1
    allowed = {"early": lambda c: c.layer < max(1, last), "late": lambda c: c.layer >= min(1, last), "any": bool}
    found = [c for c in pool if allowed[h.layers](c)]
    if not found:
        raise CompError(f"this model has no {h.kind} to test {h.name!r} on (attention-only?); pick another hypothesis")
    return found


def component_scores(model, groups: list[Group], pair: Pair) -> dict[str, dict[str, float]]:
    """Every score a hypothesis can use: ``{score name: {component label: value}}``; the
    patching scores come from ``pair`` (clean and corrupted sequences)."""
    out: dict[str, dict[str, float]] = {}
    for row in head_scores(model, groups):
        for name in SCORES:
            out.setdefault(name, {})[row.component] = getattr(row, name)
    if not model.cfg.attn_only:
        metric = LogitDiff.for_pair(model, pair)
        _, clean = model.run_with_cache(pair.clean.tokens, names_filter=lambda n: n.endswith("hook_mlp_out"))
        sweep = patch_mlp_out(model, pair.corrupted.tokens, clean, metric)  # [layer, pos]
        out["patch_at_query"] = {Component(layer).label: sweep[layer, metric.last_pos].item() for layer in range(len(sweep))}
    return out


def _found(model, h: Hypothesis, scores: dict, thr: Thresholds) -> tuple[list[Component], dict[str, float]]:
    cands = _candidates(model, h)
    values = {c.label: scores[h.score][c.label] for c in cands}
    chosen = [c for c in cands if values[c.label] >= thr.score] or [max(cands, key=lambda c: values[c.label])]
    return chosen, values


def assess_hypothesis(model, name: str, groups: list[Group], scores: dict, thr: Thresholds = Thresholds()) -> Evidence:
    """The evidence for one hypothesis on a model (see the module docstring), from
    ``scores`` (:func:`component_scores`) and ablations on ``groups``."""
    h = check_hypothesis(name)
    chosen, values = _found(model, h, scores, thr)
    circuit = set(chosen)
    for partner in h.circuit:
        if partner != name and (HYPOTHESES[partner].kind == "head" or not model.cfg.attn_only):
            circuit |= set(_found(model, HYPOTHESES[partner], scores, thr)[0])
    everything = heads(model) + mlps(model)
    outside = [c for c in everything if c not in circuit]
    base, without = ablate_sets(model, groups, [[], chosen], h.ablation)
    only = ablate_sets(model, groups, [outside], "mean")[0]
    p_chance = chance(groups)
    score_ok = max(values[c.label] for c in chosen) >= thr.score
    necessity: Necessity = (
        "yes" if without.acc_answer <= p_chance + thr.chance_margin
        else "no" if without.acc_answer >= base.acc_answer - thr.no_effect else "partial"
    )
    sufficient = only.acc_answer >= base.acc_answer - thr.sufficiency
    verdict: Verdict
    if base.acc_answer < thr.baseline:
        verdict, reason = "inconclusive", f"the intact model reaches only {base.acc_answer:.3f} final-answer accuracy"
    elif not score_ok:
        verdict, reason = "refuted", f"no {h.kind} reaches {h.score} score {thr.score}"
    elif necessity == "no":
        verdict, reason = "refuted", "ablating the components does not lower accuracy"
    elif necessity == "yes" and sufficient:
        verdict, reason = "supported", "the components score high, are necessary, and the circuit is sufficient"
    else:
        verdict, reason = "inconclusive", f"necessity {necessity}, sufficiency {'yes' if sufficient else 'no'}"
    return Evidence(
        hypothesis=name,
        claim=h.claim,
        test=HypothesisTest(score=h.score, layers=h.layers, necessity_ablation=h.ablation, sufficiency_ablation="mean"),
        components=[c.label for c in sorted(chosen)],
        scores=values,
        score=max(values[c.label] for c in chosen),
        baseline=base,
        chance_answer=p_chance,
        necessity=NecessityResult(**asdict(without), result=necessity),
        sufficiency=SufficiencyResult(circuit=[c.label for c in sorted(circuit)],
                                      ablated=[c.label for c in sorted(outside)], **asdict(only),
                                      result="yes" if sufficient else "no"),
        thresholds=asdict(thr),
        verdict=verdict,
        reason=reason,
    )


def hypothesis_names(spec: str) -> list[str]:
    """``all`` or one registry name, checked."""
    return list(HYPOTHESES) if spec == ALL else [check_hypothesis(spec).name]


def assess_run(ckpt: str, hypothesis: str, lengths: str = "", n: int = 128, seed: int = EVAL_SEED, length: int = 0,
               at: int = 0, member: str = "", device: str = "cpu", thr: Thresholds = Thresholds()) -> Assessment:
    """Test a hypothesis (or ``all``) on a run.
    Patching flips input ``at`` (default: the middle) of sequences of ``length``
    (default: the longest analysed) of task ``member`` (mixtures: default the first)."""
    names = hypothesis_names(hypothesis)
    run, wanted = load_for_analysis(ckpt, lengths, device)
    groups = analysis_groups(run.task, wanted, n, seed, device)
    pair = make_pair(member_task(run.task, member), length or max(wanted), n, seed, "flip_one", at, device)
    scores = component_scores(run.model, groups, pair)
    return Assessment(run=run.name, task=run.config.task.name, encoding=run.config.model.encoding, lengths=wanted,
                      n=n, seed=seed, patch_length=length or max(wanted), thresholds=asdict(thr),
                      hypotheses=[assess_hypothesis(run.model, name, groups, scores, thr) for name in names])
