"""Cross-task patching: how much of one task's behaviour a component carries in a multi-task model.

A ``multi`` model reads the task from its first token. Take the evaluation sequences of a
*target* task B and the same tokens with the first one replaced by a *source* task A's
token (same inputs, same teacher-forced answer prefix, different task token). Run both;
at every position that predicts an answer token, the model predicts ``pred_A`` under A's
token and ``pred_B`` under B's. Then, for each component C (each head's ``hook_z``, each
MLP's ``hook_mlp_out``, at every position), run the B sequence with C's activations taken
from the A run, and measure how far the prediction moves from B's behaviour to A's:

    moved(C) = (LD(B with C from A) - LD(B)) / (LD(A) - LD(B)),   LD = mean of logit[pred_A] - logit[pred_B]

over the answer-predicting positions (where both runs predict the same token LD is 0 in
every run: those positions do not count). 1: C alone carries the whole task-token effect;
0: none of it. ``flipped`` is the share of the positions where the task token changes the
prediction whose prediction C alone flips to ``pred_A``. Patching the embeddings
(``embed``: every position, so the task token too) gives exactly 1: the check row.

A component that moves much for (source A, target B) is where the model reads "which
task": a task-specific part; one that moves little for every pair computes what the
tasks share (e.g. a previous-token or iteration head used by all). The values agree with
``transformer_lens.patching.get_act_patch_attn_head_out_all_pos`` (A's run as "clean",
B's tokens as "corrupted").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import permutations

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.components import Component, components
from comp.circuits.data import load_for_analysis
from comp.config import EVAL_SEED
from comp.errors import CompError
from comp.evaluation import eval_batch
from comp.provenance import recorded
from comp.tasks import Batch, Task, member_task

EMBED = "embed"  # the check row: every embedding patched gives the whole effect


@dataclass
class CrossTaskResult:
    """Cross-task patching of one (source, target) pair (serialised with ``asdict``)."""

    source: str  # the task whose activations are patched in
    target: str  # the task whose sequences are run
    length: int
    n: int
    changed: float  # share of answer-predicting positions where the task token changes the prediction
    effect: float  # LD(A) - LD(B): the whole task-token effect, in logits
    moved: dict  # component -> share of the effect it carries alone (1 = all)
    flipped: dict  # component -> share of the changed predictions it flips alone

    def to_dict(self) -> dict:
        return asdict(self)


def with_task_token(batch: Batch, task: Task) -> torch.Tensor:
    """The batch's tokens with ``task``'s token in front instead of its own: ``[batch, pos]``."""
    tokens = batch.tokens.clone()
    tokens[:, 0] = task.token
    return tokens


def _sites(batch: Batch) -> torch.Tensor:
    """Positions that predict an answer token: ``[batch, pos]`` bool (the loss mask shifted left)."""
    sites = torch.zeros_like(batch.loss_mask)
    sites[:, :-1] = batch.loss_mask[:, 1:]
    return sites


def _hook(component: "Component | str") -> tuple[str, "int | None"]:
    if component == EMBED:
        return "hook_embed", None
    return component.hook, component.head


@torch.no_grad()
def cross_task_patch(model, task: Task, source: str, target: str, length: int, n: int = 64,
                     seed: int = EVAL_SEED) -> CrossTaskResult:
    """Patch each component from ``source``'s run into ``target``'s on ``target``'s sequences of ``length``."""
    if len(task.components()) < 2:
        raise CompError("cross-task patching needs a multi-task run (comp train multi --tasks parity,copy,...)")
    a, b = member_task(task, source), member_task(task, target)
    if a.name == b.name:
        raise CompError(f"--source and --target are both {a.name}; give two different member tasks")
    device = next(model.parameters()).device
    batch = eval_batch(b, length, n, seed, device)
    tokens_b, tokens_a = batch.tokens, with_task_token(batch, a)
    parts: list = [EMBED, *components(model)]
    names = {_hook(c)[0] for c in parts}
    logits_a, cache_a = model.run_with_cache(tokens_a, names_filter=lambda x: x in names)  # [batch, pos, d_vocab]
    logits_b = model(tokens_b)
    sites = _sites(batch)
    pred_a, pred_b = logits_a.argmax(-1), logits_b.argmax(-1)  # [batch, pos]
    changed = sites & (pred_a != pred_b)

    def ld(logits: torch.Tensor) -> torch.Tensor:  # mean logit[pred_A] - logit[pred_B] over the sites
        diff = logits.gather(-1, pred_a[..., None])[..., 0] - logits.gather(-1, pred_b[..., None])[..., 0]
        return diff[sites].mean()

    lo, hi = ld(logits_b), ld(logits_a)
    if not changed.any() or float(hi - lo) < 1e-6:
        raise CompError(f"the {a.name} token changes no prediction on {b.name} sequences of length {length}: "
                        "nothing moves; try another length or pair")
    moved, flipped = {}, {}
    for part in parts:
        name, head = _hook(part)

        def patch(act, hook, head=head):  # [batch, pos, (head,) d]
            if head is None:
                return cache_a[hook.name]
            act[:, :, head] = cache_a[hook.name][:, :, head]
            return act

        out = model.run_with_hooks(tokens_b, fwd_hooks=[(name, patch)])
        label = part if part == EMBED else part.label
        moved[label] = float((ld(out) - lo) / (hi - lo))
        flipped[label] = float((out.argmax(-1) == pred_a)[changed].float().mean())
    return CrossTaskResult(a.name, b.name, length, n, float(changed.sum() / sites.sum()), float(hi - lo), moved, flipped)


@recorded
def cross_task_run(ckpt: str, source: str = "", target: str = "", length: int = 0, n: int = N_SEQUENCES, seed: int = EVAL_SEED,
                   device: str = "cpu") -> list[CrossTaskResult]:
    """Cross-task patching of a multi-task run for one pair, or every ordered pair of its tasks
    (``length``: default its longest training length)."""
    run, wanted = load_for_analysis(ckpt, str(length) if length else "", device)
    members = [m.name for m in run.task.components()]
    if len(members) < 2:
        raise CompError(f"run {run.name} learns one task ({members[0]}); cross-task patching needs a multi run")
    for name in (source, target):
        if name:
            member_task(run.task, name)  # a clear error for a task not in the run
    pairs = [(s, t) for s, t in permutations(members, 2) if (not source or s == source) and (not target or t == target)]
    model = run.model
    return [cross_task_patch(model, run.task, s, t, max(wanted), n, seed) for s, t in pairs]
