"""Ablations: accuracy and loss with components knocked out, beside the intact model.

A head is ablated through its slice of ``hook_z``, an MLP through ``hook_mlp_out``, at
every position. :data:`ABLATIONS` says what replaces the activation, from the same
activation on the *reference set* (other sequences of the same task and length, see
:mod:`comp.circuits.data`):

- ``zero``: zeros;
- ``mean``: the reference set's mean at each position;
- ``resample``: row ``b`` gets reference row ``b``'s activation (another sequence).

:func:`ablate_sets` ablates several *sets* of components, each in one stacked copy of
the batch (:func:`comp.circuits.interventions.run_edited`): one component per set for
the per-component sweep, many at once for circuits (:mod:`comp.circuits.hypotheses`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.components import Component, components
from comp.circuits.data import Group, analysis_groups, load_for_analysis
from comp.circuits.interventions import run_edited
from comp.circuits.results import AblatedComponent, Ablations, Accuracy, RunAblations
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.evaluation import masked_loss, predictions
from comp.provenance import recorded
from comp.resources import check_batch
from comp.tasks import score

Ablation = Callable[[torch.Tensor], torch.Tensor]  # reference activation [B, pos, ...] -> replacement


def zero(reference: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(reference)


def mean(reference: torch.Tensor) -> torch.Tensor:
    return reference.mean(0, keepdim=True).expand_as(reference)


def resample(reference: torch.Tensor) -> torch.Tensor:
    return reference


ABLATIONS: dict[str, Ablation] = {"zero": zero, "mean": mean, "resample": resample}
METRICS = ("acc_cot", "acc_answer", "loss")


def check_method(method: str) -> Ablation:
    if method not in ABLATIONS:
        raise CompError(f"unknown ablation method {method!r}; choose one of: {', '.join(ABLATIONS)}")
    return ABLATIONS[method]


def accuracy_sums(group: Group) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-copy sums of (cot right, answer right, loss) over the rows: logits [k, B, pos, V] -> [k, 3]."""

    def reduce(logits: torch.Tensor) -> torch.Tensor:
        out = []
        for copy in logits:
            s = score(group.batch, predictions(copy, group.batch.tokens))
            loss = masked_loss(copy, group.batch, per_row=True)
            out.append(torch.stack([s["cot"].float().sum(), s["answer"].float().sum(), loss.sum()]))
        return torch.stack(out)

    return reduce


@torch.no_grad()
def ablate_sets(model, groups: list[Group], sets: list[list[Component]], method: str = "mean") -> list[Accuracy]:
    """Accuracy and loss with each set of components ablated (an empty set is the intact
    model), over all rows of all groups."""
    totals, rows = ablated_totals(model, groups, sets, method, accuracy_sums)
    return [Accuracy(**dict(zip(METRICS, (t / rows).tolist()))) for t in totals]


@torch.no_grad()
def ablated_totals(model, groups: list[Group], sets: list[list[Component]], method: str,
                   reducer: Callable[[Group], Callable[[torch.Tensor], torch.Tensor]]) -> tuple[torch.Tensor, int]:
    """``reducer(group)`` (logits [k, B, pos, V] -> per-copy sums [k, m]) summed over the
    groups with each set ablated: ``([len(sets), m], rows)``."""
    replace = check_method(method)
    hooks = sorted({c.hook for s in sets for c in s})
    totals, rows = 0, 0
    for group in groups:
        tokens, n_pos = group.batch.tokens, group.batch.tokens.shape[1]
        check_batch(model.cfg, len(tokens), n_pos, tokens.device, f"ablating at length {group.length}",
                    "lower --n or use shorter --lengths")
        _, ref = model.run_with_cache(group.reference.tokens, names_filter=lambda n: n in hooks)
        sources = {h: replace(ref[h]) for h in hooks}
        masks = {h: torch.zeros(len(sets), *ref[h].shape[1:-1], 1, dtype=torch.bool) for h in hooks}  # [K, pos(, head), 1]
        for k, members in enumerate(sets):
            for c in members:
                masks[c.hook][k] |= c.mask(n_pos, model.cfg.n_heads)
        if hooks:
            totals = totals + run_edited(model, tokens, masks, sources, reducer(group)).cpu()
        else:  # every set is empty: the intact model
            totals = totals + reducer(group)(model(tokens)[None]).cpu().expand(len(sets), -1)
        rows += len(tokens)
    return totals, rows


def chance(groups: list[Group]) -> float:
    """Final-answer accuracy of guessing: the mean of 1 / (number of answer values)."""
    return sum(1 / g.task.n_classes for g in groups) / len(groups)


def ablate_components(model, groups: list[Group], method: str = "mean", what: str = "both") -> Ablations:
    """The intact model and each head and/or MLP ablated alone."""
    chosen = components(model, what)
    results = ablate_sets(model, groups, [[]] + [[c] for c in chosen], method)
    base = asdict(results[0])
    rows = [
        AblatedComponent(**c.as_dict(), **asdict(r), **{f"d_{m}": getattr(r, m) - base[m] for m in METRICS})
        for c, r in zip(chosen, results[1:])
    ]
    return Ablations(baseline=results[0], chance_answer=chance(groups), rows=rows)


@recorded
def ablate_run(ckpt: str, method: str = "mean", what: str = "both", lengths: str = "", n: int = N_SEQUENCES,
               seed: int = EVAL_SEED, device: str = "cpu") -> RunAblations:
    """Ablate every head and/or MLP of a run."""
    check_method(method)
    run, wanted = load_for_analysis(ckpt, lengths, device)
    groups = analysis_groups(run.task, wanted, n, seed, device)
    found = ablate_components(run.model, groups, method, what)
    return RunAblations(run=run.name, task=run.config.task.name, encoding=run.config.model.encoding, method=method,
                        what=what, lengths=wanted, n=n, seed=seed, baseline=found.baseline,
                        chance_answer=found.chance_answer, rows=found.rows)
