"""Attention-head scores: what each (layer, head) attends to, on fixed evaluation sets.

From ``blocks.{l}.attn.hook_pattern`` (``[batch, head, query_pos, key_pos]``), averaged
over the rows of a length, then over lengths (and member tasks) with equal weight:

- ``prev_token``: attention from each position ``i >= 1`` to ``i - 1``;
- ``iteration``: attention from the position predicting ``s_t`` to ``x_t``
  (:func:`comp.circuits.data.answer_steps`), the Iteration Head paper's "peakiness";
  ``iteration_frac`` is the fraction of those weights above 0.5;
- ``eoi_anchor``: attention to EoI from every position after it;
- ``bos``: attention to position 0 (the task token), from positions ``i >= 1``;
- ``self``: attention of each position ``i >= 1`` to itself.

Position 0 can only attend to itself, so it is left out of the averages.
"""

from __future__ import annotations

import torch
from transformer_lens import utils

from comp.catalog import N_SEQUENCES
from comp.circuits.components import Component
from comp.circuits.data import Group, analysed_task, analysis_groups, answer_steps, load_for_analysis
from comp.circuits.results import HeadScore, HeadScores
from comp.config import EVAL_SEED
from comp.provenance import recorded
from comp.resources import chunk_size

SCORES = ("prev_token", "iteration", "iteration_frac", "eoi_anchor", "bos", "self")
ITERATION_PEAK = 0.5  # an iteration weight above this counts in iteration_frac


def _group_scores(pattern: torch.Tensor, group: Group) -> dict[str, torch.Tensor]:
    """Scores ``{name: [head]}`` of one layer's pattern [batch, head, q, k] on one group."""
    b, n_heads, n_pos, _ = pattern.shape
    batch = group.batch
    out = {
        "prev_token": pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean((0, 2)),
        "self": pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean((0, 2)),
        "bos": pattern[:, :, 1:, 0].mean((0, 2)),
    }
    eoi = batch.eoi_pos.view(b, 1, 1, 1).expand(b, n_heads, n_pos, 1)
    to_eoi = pattern.gather(-1, eoi)[..., 0]  # [batch, head, q]
    after = (torch.arange(n_pos, device=pattern.device)[None] > batch.eoi_pos[:, None])[:, None]  # [batch, 1, q]
    out["eoi_anchor"] = (to_eoi * after).sum((0, 2)) / after.sum().clamp_min(1)
    steps = answer_steps(batch)
    q = steps.query[:, None, :, None].expand(b, n_heads, -1, n_pos)
    rows = pattern.gather(2, q)  # [batch, head, steps, k]: the rows of the predicting positions
    w = rows.gather(3, steps.key[:, None, :, None].expand(b, n_heads, -1, 1))[..., 0]  # [batch, head, steps]
    valid = steps.valid[:, None].float()  # [batch, 1, steps]
    n_valid = valid.sum()
    out["iteration"] = (w * valid).sum((0, 2)) / n_valid
    out["iteration_frac"] = ((w > ITERATION_PEAK) * valid).sum((0, 2)) / n_valid
    return out


@torch.no_grad()
def head_scores(model, groups: list[Group]) -> list[HeadScore]:
    """One row per head, in model order."""
    names = [utils.get_act_name("pattern", layer) for layer in range(model.cfg.n_layers)]
    totals = {s: torch.zeros(model.cfg.n_layers, model.cfg.n_heads) for s in SCORES}  # [layer, head]
    for group in groups:
        rows, width = group.batch.tokens.shape
        per_pass = chunk_size(model.cfg, width, rows, group.batch.tokens.device, cached_patterns=len(names),
                              what=f"head scores at length {group.length}", lower="use shorter --lengths")
        for lo in range(0, rows, per_pass):  # rows of one group share a layout: chunk means weigh by rows
            part = Group(group.task, group.length, group.batch.select(slice(lo, lo + per_pass)), group.reference)
            weight = len(part.batch) / rows / len(groups)
            _, cache = model.run_with_cache(part.batch.tokens, names_filter=lambda n: n in names)
            for layer, name in enumerate(names):
                for s, v in _group_scores(cache[name].float(), part).items():
                    totals[s][layer] += v.cpu() * weight
    return [
        HeadScore(**Component(layer, h).as_dict(), **{s: totals[s][layer, h].item() for s in SCORES})
        for layer in range(model.cfg.n_layers)
        for h in range(model.cfg.n_heads)
    ]


@recorded
def score_heads(ckpt: str, lengths: str = "", n: int = N_SEQUENCES, seed: int = EVAL_SEED, device: str = "cpu",
                member: str = "") -> HeadScores:
    """Head scores of a run on its training lengths (or ``lengths``); of a multi-task run,
    on every member task (or on ``member`` alone)."""
    run, wanted = load_for_analysis(ckpt, lengths, device)
    groups = analysis_groups(analysed_task(run.task, member), wanted, n, seed, device)
    return HeadScores(run=run.name, task=run.config.task.name, encoding=run.config.model.encoding, lengths=wanted,
                      n=n, seed=seed, iteration_peak=ITERATION_PEAK, rows=head_scores(run.model, groups), member=member)
