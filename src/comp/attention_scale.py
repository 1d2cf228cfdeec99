"""Length-aware attention temperature: scalable softmax (``attn_scale = "logn"``).

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
"""

from __future__ import annotations

import types

import torch
from torch import nn

ATTN_SCALES = ("none", "logn")


def _scaled_causal_mask(self, attn_scores: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None):
    """[batch, head, query, key] logits times ``s_h * log(keys seen by each query)``, then masked."""
    n_query = attn_scores.shape[-2]
    seen = torch.arange(past_kv_pos_offset + 1, past_kv_pos_offset + n_query + 1, device=attn_scores.device)
    scale = self.ssmax_scale[None, :, None, None] * torch.log(seen.to(attn_scores.dtype))[None, None, :, None]
    return type(self).apply_causal_mask(self, attn_scores * scale, past_kv_pos_offset, attention_mask)


def install_logn_scale(model) -> None:
    """Give every attention layer a learned per-head scale of ``log(n)`` (initialised to 1)."""
    for block in model.blocks:
        attn = block.attn
        attn.ssmax_scale = nn.Parameter(torch.ones(model.cfg.n_heads))  # [head]
        attn.apply_causal_mask = types.MethodType(_scaled_causal_mask, attn)
