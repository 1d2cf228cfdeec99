"""The modules that turn position ids into model inputs, installed into TransformerLens models.

Each replaces one TransformerLens part and keeps its hook names:

- ``*PosEmbed`` modules replace ``model.pos_embed``; their output still goes through
  ``hook_pos_embed`` and is added to the token embedding (or, for shortformer, to
  queries and keys), exactly where TransformerLens adds its own.
- :class:`PositionedAttention` is TransformerLens's ``Attention`` with two steps
  reading ids instead of token indices: the rotary rotation (``apply_rotary``, so
  ``hook_rot_q``/``hook_rot_k`` keep their meaning) and an additive bias (ALiBi or
  the T5 bucketed bias) added to the raw scores before the causal mask, so
  ``hook_attn_scores`` and ``hook_pattern`` include it as they do for TransformerLens's
  own ALiBi. A built ``Attention`` becomes one by :meth:`PositionedAttention.adopt`.

Every module reads ids from the model's shared :class:`~comp.model.encodings.positions.PositionState`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformer_lens.components import Attention
from transformer_lens.components.abstract_attention import AbstractAttention
from transformer_lens.components.t5_attention import T5Attention
from transformer_lens.hook_points import HookPoint

from comp.model.determinism import lookup
from comp.model.encodings.positions import PositionState


class ZeroPosEmbed(nn.Module):
    """No position vector: always zero (``hook_pos_embed`` still fires)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        return tokens.new_zeros(*tokens.shape, self.d_model, dtype=torch.float32)  # [batch, pos, d_model]


class LearnedPosEmbed(nn.Module):
    """A learned table of position vectors indexed by position id (``W_pos[id]``)."""

    def __init__(self, rows: int, d_model: int, positions: PositionState, std: float):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(rows, d_model))  # [rows, d_model]
        nn.init.normal_(self.W_pos, std=std)
        self.positions = positions

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        ids = self.positions.window(past_kv_pos_offset, tokens.shape[1], tokens.shape[0], tokens.device)
        return lookup(self.W_pos, ids)  # [batch, pos, d_model]


def sinusoid(ids: torch.Tensor, d_model: int) -> torch.Tensor:
    """[..., d_model] vectors ``PE[p, 2k] = sin(p / 10000^(2k/d))``, ``PE[p, 2k+1] = cos(...)``."""
    inv_freq = torch.pow(10000.0, -torch.arange(0, d_model, 2, device=ids.device, dtype=torch.float64) / d_model)
    angles = ids[..., None].double() * inv_freq  # [..., d_model/2]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2).float()  # interleaved sin, cos


class SinusoidalPosEmbed(nn.Module):
    """Fixed sinusoidal position vectors of Vaswani et al. 2017, for any id (no table bound)."""

    def __init__(self, d_model: int, n_ctx: int, positions: PositionState):
        super().__init__()
        self.d_model, self.n_ctx = d_model, n_ctx
        self.positions = positions

    @property
    def W_pos(self) -> torch.Tensor:
        """[n_ctx, d_model] the vectors of ids 0..n_ctx-1 (what TransformerLens's ``model.W_pos`` shows)."""
        return sinusoid(torch.arange(self.n_ctx), self.d_model)

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        ids = self.positions.window(past_kv_pos_offset, tokens.shape[1], tokens.shape[0], tokens.device)
        return sinusoid(ids, self.d_model)  # [batch, pos, d_model]


class PrevPosEmbed(nn.Module):
    """Position and previous-position vectors, concatenated and projected.

    ``pos_embed = [W_pos[id_i] ; W_pos[id_{i-1}]] @ W_proj``: one learned table read at
    a token's own id and at the id of the token before it (zero for the first token).
    A query carrying ``W_pos[id_{i-1}]`` can match the key of token ``i-1`` carrying
    ``W_pos[id_{i-1}]``, which makes a previous-token head easy. The token block of the
    original ``[token ; pos ; prev] @ W`` is folded into ``W_E`` (a product of two free
    matrices is one free matrix), so the residual stays ``embed + pos_embed``.
    """

    def __init__(self, rows: int, d_model: int, positions: PositionState, std: float):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(rows, d_model))  # [rows, d_model]
        self.W_proj = nn.Parameter(torch.empty(2 * d_model, d_model))  # [2 * d_model, d_model]
        nn.init.normal_(self.W_pos, std=std)
        nn.init.normal_(self.W_proj, std=1 / math.sqrt(2 * d_model))
        self.hook_pos = HookPoint()  # [batch, pos, d_model]: W_pos[id_i]
        self.hook_prev_pos = HookPoint()  # [batch, pos, d_model]: W_pos[id_{i-1}], zero at i = 0
        self.positions = positions

    def forward(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        b, n = tokens.shape
        ids = self.positions.window(0, past_kv_pos_offset + n, b, tokens.device)  # [batch, offset + pos]
        prev = torch.cat([ids.new_full((b, 1), -1), ids[:, :-1]], dim=1)[:, past_kv_pos_offset:]  # [batch, pos]
        pos = self.hook_pos(lookup(self.W_pos, ids[:, past_kv_pos_offset:]))
        prev_vec = lookup(self.W_pos, prev.clamp(min=0)) * (prev >= 0)[..., None]
        prev_vec = self.hook_prev_pos(prev_vec)
        return torch.cat([pos, prev_vec], dim=-1) @ self.W_proj  # [batch, pos, d_model]


class PositionedAttention(Attention):
    """TransformerLens ``Attention`` whose rotary rotation and position bias read position ids."""

    positions: PositionState
    id_rotary: bool  # rotate queries and keys by their ids
    bias: str  # "" | "alibi" | "t5": additive bias from id differences
    t5_buckets: int
    t5_max_distance: int
    t5_bidirectional: bool  # keys can be ahead of the query in id (coupling)

    @classmethod
    def adopt(
        cls,
        attn: Attention,
        positions: PositionState,
        *,
        rotary_rows: int = 0,
        bias: str = "",
        t5_buckets: int = 32,
        t5_max_distance: int = 128,
        t5_bidirectional: bool = False,
    ) -> "PositionedAttention":
        """Turn a built ``Attention`` into a PositionedAttention in place (weights kept)."""
        if type(attn) is not Attention:
            raise TypeError(f"expected a TransformerLens Attention, got {type(attn).__name__}")
        attn.__class__ = cls
        attn.positions = positions
        attn.id_rotary = rotary_rows > 0
        attn.bias = bias
        if attn.id_rotary:  # one table row per id that can occur
            sin, cos = attn.calculate_sin_cos_rotary(
                attn.cfg.rotary_dim, rotary_rows, base=attn._rotary_base(), dtype=attn.cfg.dtype
            )
            attn.rotary_sin, attn.rotary_cos = sin, cos
        if bias == "alibi":
            attn.register_buffer("alibi_slopes", AbstractAttention.create_alibi_multipliers(attn.cfg.n_heads), persistent=False)
        if bias == "t5":
            attn.t5_buckets, attn.t5_max_distance, attn.t5_bidirectional = t5_buckets, t5_max_distance, t5_bidirectional
            attn.t5_bias = nn.Parameter(torch.zeros(t5_buckets, attn.cfg.n_heads))  # [bucket, head]
            attn.hook_t5_bias = HookPoint()  # [batch, head_index, query_pos, key_pos]
        return attn

    def apply_rotary(self, x: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        """Rotate ``x`` [batch, pos, head_index, d_head] by the ids of its tokens."""
        ids = self.positions.window(past_kv_pos_offset, x.size(1), x.size(0), x.device)  # [batch, pos]
        rd = self.cfg.rotary_dim
        x_rot, x_pass = x[..., :rd], x[..., rd:]
        cos = self.rotary_cos[ids][:, :, None, :]  # [batch, pos, 1, rotary_dim]
        sin = self.rotary_sin[ids][:, :, None, :]
        return torch.cat([x_rot * cos + self.rotate_every_two(x_rot) * sin, x_pass], dim=-1)

    def calculate_attention_scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scores = super().calculate_attention_scores(q, k)  # [batch, head_index, query_pos, key_pos]
        if not self.bias:
            return scores
        return scores + self.position_bias(q, k).to(scores.dtype)

    def _one_layout(self, k_ids: torch.Tensor) -> bool:
        """Whether one bias row can serve the batch: not training (no host sync in the training loop),
        no hook on ``hook_t5_bias`` (hooks see the whole batch), and every row's position ids equal."""
        hook = getattr(self, "hook_t5_bias", None)
        if self.training or k_ids.shape[0] == 1 or (hook is not None and (hook._forward_hooks or hook._backward_hooks)):
            return False
        return bool((k_ids == k_ids[:1]).all())

    def position_bias(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """[batch or 1, head_index, query_pos, key_pos] ALiBi or T5 bias of queries ``q`` on keys ``k``."""
        nq, nk = q.shape[1], k.shape[1]
        q_ids = self.positions.window(nk - nq, nq, q.shape[0], q.device)  # [batch, query_pos]
        k_ids = self.positions.window(0, nk, q.shape[0], q.device)  # [batch, key_pos]
        if self._one_layout(k_ids):  # evaluation: every row has the same ids, so one bias serves the batch
            q_ids, k_ids = q_ids[:1], k_ids[:1]  # [1, query_pos], [1, key_pos]: the bias broadcasts
        rel = k_ids[:, None, :] - q_ids[:, :, None]  # [batch, query_pos, key_pos]: key id - query id
        if self.bias == "alibi":
            bias = -self.alibi_slopes[None, :, None, None] * rel.abs()[:, None].float()
        else:
            bucket = T5Attention._relative_position_bucket(
                rel, bidirectional=self.t5_bidirectional, num_buckets=self.t5_buckets, max_distance=self.t5_max_distance
            )
            bias = self.hook_t5_bias(lookup(self.t5_bias, bucket).permute(0, 3, 1, 2))
        return bias
