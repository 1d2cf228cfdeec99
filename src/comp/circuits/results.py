"""Typed results of the circuit analyses. Each serialises with :func:`dataclasses.asdict`
(or its ``to_dict`` where a key is optional) into the JSON ``comp heads/ablate/patch --json``
writes (field order is key order)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

ComponentKind = Literal["head", "mlp"]
HypothesisKind = Literal["head", "mlp", "circuit"]  # circuit: several roles tested as one
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
    member: str = ""  # the member task of a multi-task run scored alone ("": every member)


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
    layers: str  # where its components were looked for: any, paper, early, late or a list such as 0,1
    necessity_ablation: str
    sufficiency_ablation: str = "mean"


@dataclass
class GroupMember:
    """One component of the group that plays a role, and its share of it."""

    component: str
    role: str  # the hypothesis whose role it plays
    score: float
    share: float  # its score / the group's score (the sum over members)
    alone_acc_answer: float  # final-answer accuracy with it ablated alone (the necessity ablation)
    alone_d_loss: float  # the loss change with it ablated alone
    left_out_acc_answer: float  # the group ablated without it (the intact model for a group of one)


@dataclass
class NecessityResult:
    """Accuracy with the hypothesis's components ablated, and what it says."""

    acc_cot: float
    acc_answer: float
    loss: float
    result: Necessity


@dataclass
class SufficiencyResult:
    """Accuracy with everything outside the circuit ablated (mean or resample), and what it says."""

    circuit: list[str]
    ablated: list[str]
    acc_cot: float
    acc_answer: float
    loss: float
    result: YesNo
    logit_diff: float  # right-answer logit minus the mean of the others, over answer tokens, circuit only
    logit_diff_recovered: float  # (circuit only - all ablated) / (intact - all ablated)


@dataclass
class Evidence:
    """The evidence for one hypothesis on one model (:func:`comp.circuits.hypotheses.assess_hypothesis`)."""

    hypothesis: str
    claim: str
    test: HypothesisTest
    components: list[str]
    members: list[GroupMember]  # each component's share (one member unless a group plays the role)
    roles: dict[str, list[str]]  # the circuit hypothesis: each role's components (else the one role)
    scores: dict[str, float]  # every candidate's score
    score: float  # the group's score: its members' scores summed (the circuit: its weakest role's)
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


@dataclass
class PatchSweep:
    """Activation patching sweeps on one (clean, corrupted) pair (:func:`comp.circuits.patching.patch_sweep`):
    each value is the metric with that one site patched clean, 1 = clean, 0 = corrupted."""

    resid_pre: list[list[float]]  # [layer][pos]
    head_out: list[list[list[float]]]  # [layer][pos][head]
    mlp_out: list[list[float]] | None  # [layer][pos]; None for attention-only models
    clean_logit_diff: float
    corrupted_logit_diff: float
    query_positions: list[int]  # where the metric reads the logits


@dataclass
class PatchResult:
    """``comp patch`` without ``--hypothesis``: which run, which pairs, and the sweeps of :class:`PatchSweep`."""

    run: str
    task: str
    encoding: str
    corruption: str
    length: int
    at: int | None  # the flipped input position (flip_one only)
    n: int
    seed: int
    positions: list[str]  # a label per position
    metric: str
    resid_pre: list[list[float]]
    head_out: list[list[list[float]]]
    mlp_out: list[list[float]] | None
    clean_logit_diff: float
    corrupted_logit_diff: float
    query_positions: list[int]

    def to_dict(self) -> dict:
        """The JSON of ``comp patch --json``: ``mlp_out`` only where the model has MLPs."""
        data = asdict(self)
        if data["mlp_out"] is None:
            del data["mlp_out"]
        return data
