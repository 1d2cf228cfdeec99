"""A fused training path: the same model, computed with fused kernels where no hook looks.

Inside :func:`fused_training`, while the model is in training mode, each attention layer
computes ``softmax(scores) @ v`` with ``F.scaled_dot_product_attention`` instead of
TransformerLens's einsum path (which materialises ``hook_attn_scores`` and
``hook_pattern``), and each LayerNorm is one ``F.layer_norm`` instead of five elementwise
passes. The result is the hook path's, to float rounding (tests/test_fused.py checks
logits and gradients to 1e-5 for every encoding):

- queries, keys and values come from TransformerLens's own ``calculate_qkv_matrices``
  and ``apply_rotary`` (so ``hook_q/k/v``, ``hook_rot_q/k`` fire), ALiBi and T5 biases
  from :meth:`~comp.model.encodings.modules.PositionedAttention.position_bias` (``hook_t5_bias``
  fires), and ``hook_z`` sees the same ``z``;
- the attention temperature of :mod:`comp.model.attention_scale` multiplies the whole logit
  (content plus bias) by ``c[b, h, q] = s_h * log(q + 1) * jitter_b``: the fused path
  multiplies the queries by ``c`` and the bias by ``c``, which is the same logit.

Nothing changes outside the context, in evaluation mode (unless the context was entered
with ``inference=True``, which evaluation at long lengths uses: an evaluation-mode forward
has no jitter factor, so the fused path computes exactly what the hook path does), or for a module whose hooks
need what the fused kernel does not materialise (``hook_attn_scores``, ``hook_pattern``;
``hook_scale``, ``hook_normalized`` of a LayerNorm): such a forward takes the hook path,
so analyses (``run_with_cache``, patching, hooks) always see TransformerLens's
computation. Key-value caches, attention masks and TransformerLens options comp does not
use also take the hook path.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import einops
import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens.components import LayerNorm
from transformer_lens.components.abstract_attention import AbstractAttention


def _hooked(*points: nn.Module) -> bool:
    """Whether any of these hook points has a hook (forward or backward) attached."""
    return any(p._forward_hooks or p._backward_hooks or p._forward_pre_hooks for p in points)


def _fusable(attn: AbstractAttention, past_kv_cache_entry, additive_attention_mask, attention_mask, position_bias) -> bool:
    cfg = attn.cfg
    return (
        (attn.training or getattr(attn, "comp_fused_inference", False))
        and past_kv_cache_entry is None
        and additive_attention_mask is None
        and attention_mask is None
        and position_bias is None
        and not cfg.use_attn_result
        and not cfg.use_attention_sinks
        and not cfg.load_in_4bit
        and cfg.clip_qkv is None
        and not cfg.use_qk_norm
        and not cfg.use_logn_attn
        and cfg.original_architecture == "comp"
        and (cfg.attn_scores_soft_cap is None or cfg.attn_scores_soft_cap <= 0)
        and (attn._attention_dir_override or cfg.attention_dir) == "causal"
        and cfg.positional_embedding_type in ("standard", "shortformer", "rotary", "alibi")
        and not _hooked(attn.hook_attn_scores, attn.hook_pattern)
    )


def temperature(attn: AbstractAttention, n_query: int, batch: int, device, offset: int = 0) -> "torch.Tensor | None":
    """``[batch or 1, head, query]`` factor on each query's logits: ``s_h * log(n)`` (logn)
    times the sequence's jitter factor (training); ``None`` when neither is on. The queries
    are the positions ``offset..offset + n_query``."""
    c = None
    if hasattr(attn, "ssmax_scale"):
        seen = torch.arange(offset + 1, offset + n_query + 1, device=device, dtype=attn.ssmax_scale.dtype)
        c = attn.ssmax_scale[None, :, None] * torch.log(seen)[None, None, :]  # [1, head, query]
    factor = attn.comp_jitter.factor if hasattr(attn, "comp_jitter") else None
    if factor is not None:
        f = factor.to(device)[:, None, None]  # [batch, 1, 1]
        c = f if c is None else c * f
    return c


def fused_attention(attn: AbstractAttention, q, k, v) -> torch.Tensor:
    """``z`` [batch, query_pos, head_index, d_head] of causal attention by SDPA, with the
    layer's position bias and temperature (``q``, ``k``, ``v`` as TransformerLens's, rotated)."""
    b, nq, nk = q.shape[0], q.shape[1], k.shape[1]
    q_ = q.transpose(1, 2)  # [batch, head, query_pos, d_head]
    k_, v_ = k.transpose(1, 2), v.transpose(1, 2)  # [batch, head, key_pos, d_head]
    bias = None
    if getattr(attn, "bias", ""):  # PositionedAttention: ALiBi or T5 from position ids
        bias = attn.position_bias(q, k)  # [batch, head, query_pos, key_pos]
    elif attn.cfg.positional_embedding_type == "alibi":  # TransformerLens's ALiBi
        if attn.alibi is None or nk > attn.alibi.size(-1):
            attn.alibi = AbstractAttention.create_alibi_bias(attn.cfg.n_heads, nk, q.device)
        bias = attn.alibi[None, :, -nq:, :nk]  # [1, head, query_pos, key_pos]
    c = temperature(attn, nq, b, q.device, nk - nq)  # queries: the last nq positions
    if c is not None:
        q_ = q_ * c[..., None].to(q_.dtype)
        bias = None if bias is None else bias * c[..., None].to(bias.dtype)
    scale = 1.0 / float(attn.attn_scale)
    if bias is None and nq == nk:
        z = F.scaled_dot_product_attention(q_, k_, v_, is_causal=True, scale=scale)
    else:  # is_causal aligns the queries with the first keys: an explicit mask for the last ones
        causal = torch.ones(nq, nk, dtype=torch.bool, device=q.device).tril(nk - nq)  # [query_pos, key_pos]
        mask = causal if bias is None else bias.to(q_.dtype).masked_fill(~causal, float("-inf"))
        z = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask, scale=scale)
    return z.transpose(1, 2)  # [batch, query_pos, head, d_head]


def attention_forward(
    self: AbstractAttention,
    query_input,
    key_input,
    value_input,
    past_kv_cache_entry=None,
    additive_attention_mask=None,
    attention_mask=None,
    position_bias=None,
) -> torch.Tensor:
    """An attention layer's forward: the fused path when it applies, else TransformerLens's."""
    if not _fusable(self, past_kv_cache_entry, additive_attention_mask, attention_mask, position_bias):
        return type(self).forward(self, query_input, key_input, value_input, past_kv_cache_entry,
                                  additive_attention_mask, attention_mask, position_bias)
    q, k, v = self.calculate_qkv_matrices(query_input, key_input, value_input)  # [batch, pos, head, d_head]
    if self.cfg.positional_embedding_type == "rotary":
        q = self.hook_rot_q(self.apply_rotary(q, k.shape[1] - q.shape[1], None))  # queries: the last positions
        k = self.hook_rot_k(self.apply_rotary(k, 0, None))
    z = self.hook_z(fused_attention(self, q, k, v))  # [batch, pos, head, d_head]
    w = einops.rearrange(self.W_O, "head_index d_head d_model -> d_model (head_index d_head)")
    return F.linear(z.reshape(z.shape[0], z.shape[1], -1).to(w.dtype), w, self.b_O)  # [batch, pos, d_model]


def rotate_every_two(self: AbstractAttention, x: torch.Tensor) -> torch.Tensor:
    """TransformerLens's ``rotate_every_two`` ([x0, x1] -> [-x1, x0] by pairs) as one ``cat`` or ``stack``
    instead of a clone and two slice assignments (the same values, exactly; fewer copies in the backward)."""
    if self.cfg.rotary_adjacent_pairs:
        return torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)  # [..., rotary_dim]
    n = x.size(-1) // 2
    return torch.cat([-x[..., n:], x[..., :n]], dim=-1)  # [..., rotary_dim]


def layer_norm_forward(self: LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """A LayerNorm's forward: one ``F.layer_norm`` when no hook looks inside, else TransformerLens's."""
    if not (self.training or getattr(self, "comp_fused_inference", False)) or x.dtype != self.w.dtype or _hooked(self.hook_scale, self.hook_normalized):
        return type(self).forward(self, x)
    return F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)  # [batch, pos, d_model]


def fused_everywhere(model: nn.Module) -> bool:
    """Whether every attention layer of ``model`` takes the fused path on a plain forward (no key-value
    cache, no mask): call inside ``fused_training(model, inference=True)`` (or in training mode).
    Then no ``[batch, head, query, key]`` score tensor is materialised, and callers that bound their
    batch by the size of attention patterns need not."""
    layers = [m for m in model.modules() if isinstance(m, AbstractAttention)]
    return bool(layers) and all(
        getattr(m.forward, "__func__", None) is attention_forward and _fusable(m, None, None, None, None) for m in layers
    )


@contextlib.contextmanager
def fused_training(model: nn.Module, enabled: bool = True, inference: bool = False) -> Iterator[None]:
    """Training forwards of ``model`` inside use the fused path (see the module docstring);
    with ``inference``, evaluation-mode forwards too (no gradients needed, no hooks looking)."""
    if not enabled:
        yield
        return
    patched, flagged = [], []  # modules this context patched; modules it marked for evaluation-mode forwards
    for module in model.modules():
        fusable = isinstance(module, AbstractAttention) and type(module).forward is AbstractAttention.forward
        if not (fusable or type(module) is LayerNorm):
            continue
        if "forward" not in vars(module):  # an enclosing context (the training loop's) has patched it already
            module.forward = types.MethodType(attention_forward if fusable else layer_norm_forward, module)
            if fusable:
                module.rotate_every_two = types.MethodType(rotate_every_two, module)
            patched.append(module)
        if inference and not getattr(module, "comp_fused_inference", False):
            module.comp_fused_inference = True
            flagged.append(module)
    try:
        yield
    finally:
        for module in flagged:
            del module.comp_fused_inference
        for module in patched:
            del module.forward
            vars(module).pop("rotate_every_two", None)
