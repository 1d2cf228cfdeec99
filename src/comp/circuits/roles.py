"""Who plays a role: where to look (layers), the group of components found, each member's share.

A role (a hypothesis of :mod:`comp.circuits.hypotheses`) can be played by one component
or shared by several (rotary models split the iteration head over two or three heads,
none of which reaches the score threshold or is necessary alone). :func:`find_group`
finds the group from the role's score and ablations:

1. **pool**: the candidates (heads or MLPs in the allowed layers) whose score reaches
   ``Thresholds.member`` and half the best candidate's score, by score (ties: the one
   whose own ablation costs more first);
2. **greedy**: the smallest prefix of the pool whose ablation together (the role's
   necessity ablation) drops final-answer accuracy to chance + ``chance_margin``; if no
   prefix does, the whole pool;
3. **prune**: while some member can leave without changing the result (the group without
   it is still necessary; or, for a group that is not, its ablated accuracy and loss move
   by less than ``Thresholds.member_effect``), the lowest-scoring such member leaves.
   Decoys (heads that attend like the role but write nothing) leave here.

The group's score is the sum of its members' scores (for attention scores: the attention
weight the group puts on the role's target, summed over heads); each member's share is
its score over that sum, beside its own ablation effect and the group ablated without it.

Layers (:data:`LayerChoice`): ``any`` (every layer, the default), ``paper`` (each
role's placement in the Iteration Head paper, the registry's ``layers``), ``early``
(before the last layer), ``late`` (after the first) or explicit layers (``0,1``).

The ``iteration_drop`` score of an MLP (:func:`iteration_drop`) finds the paper's
position MLP: the share of the iteration-like heads' attention on ``x_t`` that is lost
when the MLP's output is zeroed (the heads after it whose iteration score reaches
``member``). Zeroed, not mean-ablated: an output that depends on positions only is the
same in every sequence of one length, and mean ablation keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Union

import torch

from comp.circuits.components import Component
from comp.circuits.data import Group
from comp.circuits.heads import head_scores
from comp.circuits.results import Accuracy, GroupMember
from comp.errors import CompError

Placement = Literal["early", "late", "any"]
LayerChoice = Union[Literal["any", "paper", "early", "late"], tuple[int, ...]]
LAYER_WORDS = ("any", "paper", "early", "late")


def parse_layers(spec: str) -> LayerChoice:
    """``any``, ``paper``, ``early``, ``late`` or comma-separated layer indices (``0,1``)."""
    spec = spec.strip()
    if spec in LAYER_WORDS:
        return spec  # type: ignore[return-value]
    parts = [p.strip() for p in spec.split(",")]
    if not spec or not all(p.isdigit() for p in parts):
        raise CompError(f"--layers {spec!r} is not a layer choice; use one of {', '.join(LAYER_WORDS)} "
                        "or layer indices such as 0,1")
    return tuple(sorted({int(p) for p in parts}))


def layers_label(choice: LayerChoice) -> str:
    return choice if isinstance(choice, str) else ",".join(map(str, choice))


def check_layers(choice: LayerChoice, n_layers: int) -> None:
    if isinstance(choice, tuple) and max(choice) >= n_layers:
        raise CompError(f"--layers {layers_label(choice)}: this model has layers 0-{n_layers - 1}; "
                        "pick layers in that range")


def in_layers(layer: int, choice: LayerChoice, placement: Placement, n_layers: int) -> bool:
    """Whether a component of ``layer`` may play a role placed at ``placement`` (its paper placement)."""
    if isinstance(choice, tuple):
        return layer in choice
    where = placement if choice == "paper" else choice
    last = n_layers - 1
    return {"early": layer < max(1, last), "late": layer >= min(1, last), "any": True}[where]


@torch.no_grad()
def iteration_drop(model, groups: list[Group], member: float) -> dict[str, float]:
    """``{MLPl: share of the later iteration-like heads' attention on x_t lost when MLPl is zeroed}``
    (0 where no head after it reaches ``member``)."""
    intact = {(r.layer, r.head): r.iteration for r in head_scores(model, groups)}
    out = {}
    for layer in range(model.cfg.n_layers):
        readers = [k for k, v in intact.items() if k[0] > layer and v >= member]
        if not readers:
            out[Component(layer).label] = 0.0
            continue
        with model.hooks(fwd_hooks=[(Component(layer).hook, lambda act, hook: torch.zeros_like(act))]):
            zeroed = {(r.layer, r.head): r.iteration for r in head_scores(model, groups)}
        before = sum(intact[k] for k in readers)
        out[Component(layer).label] = (before - sum(zeroed[k] for k in readers)) / before
    return out


@dataclass
class Found:
    """The group playing a role: members (model order), each one's share, the group ablated."""

    group: list[Component]
    score: float  # the members' scores summed
    members: list[GroupMember]
    baseline: Accuracy
    ablated: Accuracy  # the whole group ablated (the necessity test)
    pool: list[str]  # the candidates whose score reached `member` and half the best score


Ablate = Callable[[list[list[Component]]], list[Accuracy]]  # sets of components -> accuracy with each set ablated


def find_group(candidates: list[Component], values: dict[str, float], ablate: Ablate,
               necessary: Callable[[Accuracy], bool], member: float, member_effect: float, role: str = "") -> Found:
    """The group of ``candidates`` that plays ``role`` (module docstring); ``values``: their
    scores; ``ablate``: the role's necessity ablation of sets of components; ``necessary``:
    the necessity test on an ablated accuracy."""
    best = max(candidates, key=lambda c: values[c.label])
    bar = max(member, values[best.label] / 2)
    pool = [c for c in candidates if values[c.label] >= bar] or [best]
    base, *alone = ablate([[]] + [[c] for c in pool])
    own = dict(zip(pool, alone))
    pool.sort(key=lambda c: (-values[c.label], own[c].acc_answer, -own[c].loss))
    prefixes = [own[pool[0]]] + ablate([pool[:k] for k in range(2, len(pool) + 1)])
    size = next((k + 1 for k, r in enumerate(prefixes) if necessary(r)), len(pool))
    group, ablated = pool[:size], prefixes[size - 1]

    def same(r: Accuracy) -> bool:
        if necessary(ablated):
            return necessary(r)
        return abs(r.acc_answer - ablated.acc_answer) < member_effect and abs(r.loss - ablated.loss) < member_effect

    left_out = {group[0]: base}
    while len(group) > 1:
        left_out = dict(zip(group, ablate([[m for m in group if m != x] for x in group])))
        leaving = [x for x in group if same(left_out[x])]
        if not leaving:
            break
        drop = min(leaving, key=lambda c: (values[c.label], -own[c].acc_answer))
        group, ablated = [m for m in group if m != drop], left_out[drop]
        left_out = {group[0]: base}
    total = sum(values[c.label] for c in group)
    members = [GroupMember(component=c.label, role=role, score=values[c.label],
                           share=values[c.label] / total if total else 0.0, alone_acc_answer=own[c].acc_answer,
                           alone_d_loss=own[c].loss - base.loss, left_out_acc_answer=left_out[c].acc_answer)
               for c in sorted(group)]
    return Found(group=sorted(group), score=total, members=members, baseline=base, ablated=ablated,
                 pool=[c.label for c in sorted(pool)])
