"""Typed results of the circuit analyses. Each serialises with :func:`dataclasses.asdict`
into the JSON ``comp heads/ablate/patch --json`` writes (field order is key order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ComponentKind = Literal["head", "mlp"]
Verdict = Literal["supported", "refuted", "inconclusive"]
Necessity = Literal["yes", "no", "partial"]
YesNo = Literal["yes", "no"]


@dataclass
class HeadScore:
    """The scores of one head (:mod:`comp.circuits.heads`)."""

    component: str  # L1H0
    kind: ComponentKind
    layer: int
    head: int | None
    prev_token: float
    iteration: float
    iteration_frac: float
    eoi_anchor: float
    bos: float
    self: float


@dataclass
class Analysed:
    """Which run an analysis looked at, on which evaluation sets (the first keys of its JSON)."""

    run: str
    task: str
    encoding: str
    lengths: list[int]
    n: int
    seed: int


@dataclass
class HeadScores(Analysed):
    """``comp heads``: every head's scores on a run's evaluation sets."""

    iteration_peak: float  # an iteration weight above this counts in iteration_frac
    rows: list[HeadScore]


@dataclass
class Accuracy:
    """Teacher-forced accuracy and loss of a model (intact or with components ablated)."""

    acc_cot: float
    acc_answer: float
    loss: float


@dataclass
class AblatedComponent:
    """One component ablated alone, and the change from the intact model (``d_*``)."""

    component: str
    kind: ComponentKind
    layer: int
    head: int | None
    acc_cot: float
    acc_answer: float
    loss: float
    d_acc_cot: float
    d_acc_answer: float
    d_loss: float


@dataclass
class Ablations:
    """The intact model and each head and/or MLP ablated alone."""

    baseline: Accuracy
    chance_answer: float  # final-answer accuracy of guessing
    rows: list[AblatedComponent]


@dataclass
class RunAblations:
    """``comp ablate``: :class:`Ablations` of a run, with what was asked."""

    run: str
    task: str
    encoding: str
    method: str
    what: str
    lengths: list[int]
    n: int
    seed: int
    baseline: Accuracy
    chance_answer: float
    rows: list[AblatedComponent]


@dataclass
class HypothesisTest:
    """How a hypothesis is tested."""

    score: str
    layers: str
    necessity_ablation: str
    sufficiency_ablation: str = "mean"


@dataclass
class NecessityResult:
    """Accuracy with the hypothesis's components ablated, and what it says."""

    acc_cot: float
    acc_answer: float
    loss: float
    result: Necessity


@dataclass
class SufficiencyResult:
    """Accuracy with everything outside the circuit mean-ablated, and what it says."""

    circuit: list[str]
    ablated: list[str]
    acc_cot: float
    acc_answer: float
    loss: float
    result: YesNo


@dataclass
class Evidence:
    """The evidence for one hypothesis on one model (:func:`comp.circuits.hypotheses.assess_hypothesis`)."""

    hypothesis: str
    claim: str
    test: HypothesisTest
    components: list[str]
    scores: dict[str, float]  # every candidate's score
    score: float  # the best score of the chosen components
    baseline: Accuracy
    chance_answer: float
    necessity: NecessityResult
    sufficiency: SufficiencyResult
    thresholds: dict[str, float]
    verdict: Verdict
    reason: str


@dataclass
class Assessment(Analysed):
    """``comp patch --hypothesis``: the evidence for each hypothesis asked, on one run."""

    patch_length: int
    thresholds: dict[str, float]
    hypotheses: list[Evidence] = field(default_factory=list)
