"""Attention temperature: scalable softmax (``attn_scale = "logn"``) and temperature
augmentation in training (``attn_jitter``).

Softmax attention over ``n`` keys dilutes: a key whose logit leads the others by a
fixed margin gets a weight that shrinks like ``1/n`` as sequences grow, so a head that
is sharp at training lengths blurs at longer ones. Scaling every query's logits by
``s_h * log(n)``, with ``n`` the number of keys that query sees and ``s_h`` a learned
scale per head, keeps such a head sharp at any length: a margin ``m`` becomes a weight
ratio ``n ** (s_h * m)``. This is Scalable-Softmax (Nakanishi 2025), after Chiang &
Cholak (2022), who scaled attention by ``log n`` to make parity constructions work at
any length.

The scale multiplies the whole logit (content, rotary, ALiBi or T5 bias) before the
causal mask, so ``hook_attn_scores`` and ``hook_pattern`` show what the softmax sees, as
they do for ALiBi. The learned scales are ``blocks.L.attn.ssmax_scale`` ([n_heads]).

Temperature augmentation (``attn_jitter = j``, training only) attacks the same dilution
from the training side. A head that reads one key with margin ``m`` over ``n`` keys gives
it weight ``e^m / (e^m + n)``: training lengths only ask for ``e^m`` large against their
``n``, and nothing pushes the margin further, so at 4-8x the length the weight is gone
(comp's parity models read ``x_t`` with margins of about 1 nat; see
docs/results/lengthgen/README.md). Multiplying each training sequence's logits (every
head, every layer) by a factor ``c`` drawn uniformly from ``[1 - j, 1]`` asks the model
to be right with its margins shrunk to ``c * m``; a margin that survives ``c = 1/2`` at
``n`` training keys, ``e^{m/2} >> n``, keeps weight at ``n^2`` keys when evaluation uses
``c = 1``. The factors come from the training data generator (one per sequence, drawn
after the batch and its position ids), so runs stay deterministic and resumable;
evaluation and analysis never jitter.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from comp.errors import CompError

ATTN_SCALES = ("none", "logn")


class Jitter:
    """The per-sequence logit factors of the current training forward, shared by every layer."""

    def __init__(self) -> None:
        self.factor: torch.Tensor | None = None  # [batch] while a jittered training forward runs


def draw_jitter(batch: int, amount: float, gen: "torch.Generator | None", device) -> torch.Tensor:
    """[batch] factors uniform in ``[1 - amount, 1]``, from ``gen``."""
    u = torch.rand(batch, generator=gen, device=device)
    return 1.0 - amount * u


def _scaled_causal_mask(self, attn_scores: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None):
    """[batch, head, query, key] logits times ``s_h * log(keys seen by each query)`` (logn) and
    the sequence's jitter factor (training), then masked."""
    if hasattr(self, "ssmax_scale"):
        n_query = attn_scores.shape[-2]
        seen = torch.arange(past_kv_pos_offset + 1, past_kv_pos_offset + n_query + 1, device=attn_scores.device)
        scale = self.ssmax_scale[None, :, None, None] * torch.log(seen.to(attn_scores.dtype))[None, None, :, None]
        attn_scores = attn_scores * scale
    factor = self.comp_jitter.factor if hasattr(self, "comp_jitter") else None
    if factor is not None:
        attn_scores = attn_scores * factor.to(attn_scores.dtype)[:, None, None, None]
    return type(self).apply_causal_mask(self, attn_scores, past_kv_pos_offset, attention_mask)


def install_logn_scale(model) -> None:
    """Give every attention layer a learned per-head scale of ``log(n)`` (initialised to 1)."""
    for block in model.blocks:
        attn = block.attn
        attn.ssmax_scale = nn.Parameter(torch.ones(model.cfg.n_heads))  # [head]
        attn.apply_causal_mask = types.MethodType(_scaled_causal_mask, attn)


def install_jitter(model, jitter: Jitter) -> None:
    """Let every attention layer multiply its logits by ``jitter.factor`` when one is set."""
    for block in model.blocks:
        attn = block.attn
        attn.comp_jitter = jitter
        attn.apply_causal_mask = types.MethodType(_scaled_causal_mask, attn)


def sharpen(model, factor: float) -> None:
    """Multiply every learned ``log n`` scale of ``model`` by ``factor`` (an inference-time
    temperature, chosen on validation lengths by :mod:`comp.lengthgen.calibrate`)."""
    if factor == 1.0:
        return
    if not factor > 0:
        raise CompError(f"a sharpening factor must be positive, got {factor}")
    layers = [b.attn for b in model.blocks if hasattr(b.attn, "ssmax_scale")]
    if not layers:
        raise CompError("this model has no learned log(n) attention scale to sharpen; "
                        "train it with --set model.attn_scale=logn, or leave the factor at 1")
    with torch.no_grad():
        for attn in layers:
            attn.ssmax_scale.mul_(factor)
