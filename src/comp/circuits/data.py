"""The sequences circuit analyses run on, and where each answer step reads from.

Analyses use comp's fixed evaluation sets (:func:`comp.evaluation.eval_batch`): one batch
per (member task, length), seeded by ``(seed, task, length)``, so every command sees the
same sequences. A *reference set* for mean and resample ablations is the evaluation set
of seed ``seed + 1``: other sequences of the same task and length.

Answer steps: the answer token holding ``s_t`` (at ``answer_start + t - 1`` with a chain
of thought) is predicted at the position before it, ``answer_start + t - 2``, which is
the position that should read ``x_t`` (at position ``t``). Without a chain of thought the
only answer is ``s_L``, predicted from ``answer_start - 1`` and reading ``x_L``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from comp.evaluation import eval_batch
from comp.runs.load import LoadedRun, load_run_config, load_run_for_lengths
from comp.runs.names import resolve_run
from comp.tasks import Batch, Task, member_task, parse_lengths
from comp.tasks.base import CHECK_ABOVE


def load_for_analysis(ckpt: str, lengths: str = "", device: str = "cpu") -> tuple[LoadedRun, list[int]]:
    """A run and the lengths to analyse it on: ``lengths`` (e.g. ``1-16``) or its training lengths."""
    wanted = parse_lengths(lengths or load_run_config(resolve_run(ckpt)).train.train_lengths)
    return load_run_for_lengths(ckpt, wanted, device), wanted


def analysed_task(task: Task, member: str = "") -> Task:
    """What an analysis runs on: every member of a mixture when ``member`` is empty, else
    that member alone (a :class:`comp.errors.CompError` naming the members if it is not one)."""
    return member_task(task, member) if member else task


@dataclass
class Group:
    """The evaluation set of one member task at one length, and its reference set."""

    task: Task
    length: int
    batch: Batch
    reference: Batch


def analysis_groups(task: Task, lengths: list[int], n: int, seed: int, device: "str | torch.device" = "cpu",
                    ref_n: int = 0) -> list[Group]:
    """One :class:`Group` per (member task, length); all rows of a group share one length.
    Its reference set (data seed ``seed + 1``) has ``ref_n`` rows (default 0: ``n``; a mean
    ablation's mean is estimated better from more). Every group is held at once (reference
    sets too): refused up front if they cannot fit."""
    members = task.components()
    ref_n = ref_n or n
    tokens = (n + ref_n) * sum(m.seq_len(length) for m in members for length in lengths)  # clean + reference rows
    if tokens > CHECK_ABOVE:
        from comp.resources import check_rows

        width = max(m.seq_len(max(lengths)) for m in members)
        check_rows(tokens // width + 1, width, device, f"the evaluation sets of {len(lengths)} lengths",
                   "analyse fewer or shorter --lengths, or lower --n or --ref-n")
    return [
        Group(member, length, eval_batch(member, length, n, seed, device), eval_batch(member, length, ref_n, seed + 1, device))
        for member in members
        for length in lengths
    ]


@dataclass
class Steps:
    """The answer steps of a batch: step ``k`` of row ``b`` is predicted at ``query[b, k]``
    and should read ``x_t`` at ``key[b, k]``; ``valid`` is false past a row's answers."""

    query: torch.Tensor  # [batch, steps] long
    key: torch.Tensor  # [batch, steps] long
    valid: torch.Tensor  # [batch, steps] bool


def answer_steps(batch: Batch) -> Steps:
    """Where each answer token is predicted and which input it should read (module docstring)."""
    n_ans = batch.answer_pos - batch.answer_start + 1  # [batch]: L with CoT, 1 without
    k = torch.arange(int(n_ans.max()), device=batch.tokens.device)[None]  # [1, steps]
    valid = k < n_ans[:, None]
    t = batch.lengths[:, None] - n_ans[:, None] + 1 + k  # [batch, steps]: state index of step k
    query = batch.answer_start[:, None] + k - 1
    key = batch.input_positions().gather(1, (t - 1).clamp(0, int(batch.lengths.max()) - 1))  # position of x_t
    return Steps(query=torch.where(valid, query, 0), key=torch.where(valid, key, 0), valid=valid)
