"""Length buckets: a training step that computes no padding it can avoid.

A training batch mixes lengths and is right-padded to its longest row: with parity 1-16
a batch is 34 tokens wide while the mean row has 19 real tokens, so ~44% of a padded
forward is spent on PAD. :func:`forward_backward` computes the same step as a few
narrower batches: rows sorted by their real width, cut into ``n`` groups of equal size,
each group trimmed to its own widest row (inside the fused path, its last block computed
only from the group's first scored position on: :mod:`comp.model.scored`). Under the
causal mask a token never sees the pads after it, so every real token's logits are the
padded batch's (to float rounding), and the loss is the same per-token mean over all
answer tokens of the batch (each group's sum over its answer tokens, divided by the
batch's count). Nothing is drawn here: the
batch, its position ids and jitter factors come from the data stream exactly as in a
padded step (:meth:`~comp.model.CompTransformer.sampled_positions` draws them for the
whole batch; each group reads its rows), so runs, resume and seeds are unchanged.

Each group runs forward and backward before the next (gradients accumulate), so peak
memory is that of one group. Trimming needs each row's width on the host (one sync per
step): buckets are for the CPU, where that costs nothing; on a GPU the loop keeps one
fixed-shape padded batch (static shapes for ``torch.compile`` and CUDA graphs).

Where :func:`comp.model.packed.packable` accepts the model (most encodings, no hook
attached), :func:`forward_backward` packs the batch's sequences side by side into rows
instead (one forward, almost no padding); the buckets remain for the rest and for
``train.packing = false``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from comp.evaluation import autocast, masked_loss
from comp.model.packed import pack, packable, packed_loss_sum
from comp.model.scored import scored_logits
from comp.tasks import Batch
from comp.tasks.vocab import PAD

MIN_ROWS = 32  # rows per bucket: fewer and the per-forward overhead outweighs the padding saved
MAX_BUCKETS = 8


def n_buckets(batch_size: int, device: torch.device) -> int:
    """How many groups a training batch is cut into: 1 (padded, fixed shape) on a GPU."""
    if device.type != "cpu":
        return 1
    return max(1, min(MAX_BUCKETS, batch_size // MIN_ROWS))


def groups(tokens: torch.Tensor, n: int) -> list[tuple[torch.Tensor, int]]:
    """``n`` groups of rows ``(row indices [rows], width)``, rows sorted by real width."""
    real = (tokens != PAD).sum(1)  # [batch]: tokens before the padding
    order = real.argsort(stable=True)  # [batch]
    widths = real[order].tolist()  # the one host sync
    size = -(-len(widths) // n)
    return [(order[lo : lo + size], max(widths[lo : lo + size])) for lo in range(0, len(widths), size)]


def scored_starts(loss_mask: torch.Tensor, parts: list[tuple[torch.Tensor, int]]) -> list[int]:
    """Per group, the first position whose prediction is scored in any of its rows (0 if none is)."""
    first = loss_mask[:, 1:].int().argmax(1)  # [batch]: position i predicts token i+1
    return torch.stack([first[rows].min() for rows, _ in parts]).tolist()  # one host sync


def answer_loss_sum(logits: torch.Tensor, tokens: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of the answer tokens only (logits at the answer positions only)."""
    target = loss_mask[:, 1:]  # [batch, pos-1]: position i predicts token i+1
    picked = logits[:, :-1][target]  # [answers, d_vocab]
    return F.cross_entropy(picked.float(), tokens[:, 1:][target], reduction="sum")


def forward_backward(
    model: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    batch: Batch,
    n: int,
    amp: bool = False,
    packing: bool = True,
) -> torch.Tensor:
    """Forward and backward of one training step on ``batch`` in ``n`` length buckets
    (``n == 1``: the padded batch as one forward); returns the detached loss (mean over
    answer tokens). With ``n > 1`` and ``packing``, a model :func:`~comp.model.packed.packable`
    runs the batch packed instead (one forward, no padding: :mod:`comp.model.packed`).
    Run inside ``model.sampled_positions(batch.tokens, gen)``."""
    device = batch.tokens.device
    if n <= 1:
        with autocast(device, amp):
            logits = forward(batch.tokens)  # [batch, pos, d_vocab]
        loss = masked_loss(logits, batch)
        loss.backward()
        return loss.detach()
    count = batch.loss_mask[:, 1:].sum().clamp_min(1)  # answer tokens of the whole batch
    if packing and forward is model and packable(model):
        ids = model._forward_ids(batch.tokens) if model.encoding.uses_ids else None  # [batch, pos]
        with autocast(device, amp):
            loss = packed_loss_sum(model, pack(batch.tokens, batch.loss_mask, ids)) / count
        loss.backward()
        return loss.detach()
    total = torch.zeros((), device=device)
    parts = groups(batch.tokens, n)
    starts = scored_starts(batch.loss_mask, parts) if forward is model else [0] * len(parts)
    for (rows, width), start in zip(parts, starts):
        tokens, mask = batch.tokens[rows, :width], batch.loss_mask[rows, :width]  # [rows, width]
        with autocast(device, amp), model.rows(rows, width):
            logits = scored_logits(model, tokens, start)  # [rows, width - start, d_vocab]
        part = answer_loss_sum(logits, tokens[:, start:], mask[:, start:]) / count
        part.backward()
        total += part.detach()
    return total
