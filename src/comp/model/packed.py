"""Packed training: several sequences in one row, a block-diagonal causal mask, no padding computed.

A training batch mixes lengths (parity 1-16: rows of 4 to 34 tokens, 19 on average) and
is right-padded to its widest row. :func:`pack` places the rows' real tokens side by side
in rows of the batch's width (best fit, longest first), so that almost no position is
padding, and :func:`packed_loss_sum` runs the whole batch as one forward over those rows:

- attention is ``F.scaled_dot_product_attention`` with a mask that lets a token see only
  the earlier tokens of its own sequence (block-diagonal and causal);
- every position-dependent input restarts at each sequence: position ids (learned
  tables, sinusoids, rotary angles, ALiBi and T5 biases read the ids the padded batch
  gives each token, drawn ids included), the ``attn_scale=logn`` factor (the token's
  index in its own sequence) and the ``attn_jitter`` factor (its sequence's);
- the last block runs its attention output, MLP, final norm and unembedding only at the
  scored positions (the predictions from the end-of-input token on), gathered flat.

The loss is the padded batch's summed cross-entropy over answer tokens, to float rounding
(``tests/test_packed.py`` checks loss and gradients against the padded hook path to
1e-5 for every encoding :func:`packable` accepts). Nothing is drawn here: the batch, its
ids and jitter factors come from the data stream as for a padded step.

It applies in training mode inside :func:`comp.model.fused.fused_training` when no hook is
attached anywhere and every block is a plain pre-norm block; not to ``shortformer``
(positions added inside the attention) nor ``prevpos`` (the previous token's id would
cross a packing boundary). :func:`packable` says which; the caller falls back to length
buckets (:mod:`comp.train.buckets`). Packing reads the rows' widths on the host, so it
is for the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformer_lens.components import PosEmbed
from transformer_lens.components.abstract_attention import AbstractAttention
from transformer_lens.utils import apply_softcap

from comp.model.determinism import lookup
from comp.model.fused import _fusable
from comp.model.scored import _tail_ok
from comp.tasks.vocab import PAD

UNPACKABLE = ("shortformer", "prevpos")  # encoding bases whose positions cannot restart inside a row


@dataclass
class Packed:
    """A batch packed into rows; pads are ``PAD`` tokens belonging to no sequence."""

    tokens: torch.Tensor  # [rows, width]
    ids: torch.Tensor  # [rows, width] each token's position id in the padded batch (0 at pads)
    index: torch.Tensor  # [rows, width] each token's index in its own sequence (0 at pads)
    seq: torch.Tensor  # [rows, width] the batch row each token comes from (-1 at pads)
    scored: torch.Tensor  # [answers] flat positions (row * width + col) whose prediction is scored
    targets: torch.Tensor  # [answers] the tokens they predict

    @property
    def mask(self) -> torch.Tensor:
        """[rows, 1, width, width] True where a query may attend to a key: same sequence, not later."""
        w = self.seq.shape[1]
        causal = torch.ones(w, w, dtype=torch.bool, device=self.seq.device).tril()  # [query, key]
        return ((self.seq[:, :, None] == self.seq[:, None, :]) & causal)[:, None]


def layout(widths: list[int], width: int) -> tuple[list[int], list[int], int]:
    """Best fit, longest first: each sequence's (row, offset) in rows of ``width`` slots, and
    the number of rows. Deterministic (ties: the earlier sequence, the earlier row)."""
    order = sorted(range(len(widths)), key=lambda i: -widths[i])
    free: dict[int, list[int]] = {}  # free slots -> rows with exactly that many, oldest first
    used: list[int] = []  # slots used per row
    row, offset = [0] * len(widths), [0] * len(widths)
    for i in order:
        w = widths[i]
        fit = next((c for c in range(w, width + 1) if free.get(c)), None)
        if fit is None:
            r = len(used)
            used.append(0)
        else:
            r = free[fit].pop(0)
        row[i], offset[i] = r, used[r]
        used[r] += w
        if width - used[r] > 0:
            free.setdefault(width - used[r], []).append(r)
    return row, offset, len(used)


def pack(tokens: torch.Tensor, loss_mask: torch.Tensor, ids: "torch.Tensor | None" = None) -> Packed:
    """Pack a right-padded batch ``tokens`` [batch, pos] (its ``loss_mask`` and position ``ids``,
    both [batch, pos]; no ``ids``: each token's index) into rows of ``pos`` slots. One host
    read (the rows' widths)."""
    b, p = tokens.shape
    device = tokens.device
    real = (tokens != PAD).sum(1)  # [batch]
    row, offset, n_rows = layout(real.tolist(), p)
    col = torch.arange(p, device=device)  # [pos]
    keep = col[None, :] < real[:, None]  # [batch, pos]: real tokens
    start = torch.tensor(row, device=device) * p + torch.tensor(offset, device=device)  # [batch]
    dest = (start[:, None] + col[None, :])[keep]  # [real tokens] flat positions in the packed rows
    size = n_rows * p

    def scatter(values: torch.Tensor, fill: int) -> torch.Tensor:
        out = torch.full((size,), fill, dtype=values.dtype, device=device)
        out[dest] = values[keep]
        return out.view(n_rows, p)

    seq_ids = torch.arange(b, device=device)[:, None].expand(b, p)
    scored = loss_mask[:, 1:] & keep[:, :-1]  # [batch, pos-1]: position i predicts token i+1
    return Packed(
        tokens=scatter(tokens, PAD),
        ids=scatter(col.expand(b, p) if ids is None else ids, 0),
        index=scatter(col.expand(b, p), 0),
        seq=scatter(seq_ids, -1),
        scored=(start[:, None] + col[None, :-1])[scored],
        targets=tokens[:, 1:][scored],
    )


def packable(model) -> bool:
    """Whether :func:`packed_loss_sum` computes ``model``'s training forward (see the module docstring)."""
    return (
        _tail_ok(model)  # training, inside fused_training, no hook anywhere, plain pre-norm blocks
        and model.encoding.base.name not in UNPACKABLE
        and all(_fusable(block.attn, None, None, None, None) for block in model.blocks)
    )


def _temperature(attn: AbstractAttention, packed: Packed, factor: "torch.Tensor | None") -> "torch.Tensor | None":
    """[rows, head or 1, width] factor on each query's logits (``comp.model.fused.temperature``, per token)."""
    c = None
    if hasattr(attn, "ssmax_scale"):
        seen = (packed.index + 1).to(attn.ssmax_scale.dtype)  # [rows, width]
        c = attn.ssmax_scale[None, :, None] * torch.log(seen)[:, None, :]  # [rows, head, width]
    if factor is not None:
        f = torch.cat([factor.to(packed.seq.device), factor.new_ones(1)])[packed.seq][:, None, :]  # [rows, 1, width]
        c = f if c is None else c * f
    return c


def _rotate(attn: AbstractAttention, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``x`` [rows, width, head, d_head] rotated by ``ids`` [rows, width] (TransformerLens's formula)."""
    rd = attn.cfg.rotary_dim
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    cos, sin = attn.rotary_cos[ids][:, :, None, :], attn.rotary_sin[ids][:, :, None, :]  # [rows, width, 1, rd]
    return torch.cat([x_rot * cos + attn.rotate_every_two(x_rot) * sin, x_pass], dim=-1)


def qkv(attn: AbstractAttention, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values [rows, width, head, d_head] of ``x`` [rows, width, d_model] as one
    product (TransformerLens's ``calculate_qkv_matrices`` makes three)."""
    w_q, w_k, w_v = attn.W_Q, attn.W_K, attn.W_V  # [head, d_model, d_head]
    if not (w_q.shape == w_k.shape == w_v.shape):  # grouped keys and values: TransformerLens's
        return attn.calculate_qkv_matrices(x, x, x)
    h, d_head = w_q.shape[0], w_q.shape[2]
    w = torch.stack([w_q, w_k, w_v]).permute(0, 1, 3, 2).reshape(3 * h * d_head, -1)  # [3 * head * d_head, d_model]
    b = torch.stack([attn.b_Q, attn.b_K, attn.b_V]).reshape(-1)  # [3 * head * d_head]
    q, k, v = F.linear(x, w, b).view(*x.shape[:2], 3, h, d_head).unbind(2)
    return q, k, v


def _attention_z(attn: AbstractAttention, x: torch.Tensor, packed: Packed, mask: torch.Tensor,
                 factor: "torch.Tensor | None") -> torch.Tensor:
    """``z`` [rows, width, head * d_head] of one attention layer on packed normalized inputs ``x``."""
    q, k, v = qkv(attn, x)  # [rows, width, head, d_head]
    if attn.cfg.positional_embedding_type == "rotary":
        rot_ids = packed.ids if getattr(attn, "id_rotary", False) else packed.index
        q, k = _rotate(attn, q, rot_ids), _rotate(attn, k, rot_ids)
    q_, k_, v_ = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [rows, head, width, d_head]
    n = x.shape[1]
    bias = None
    if getattr(attn, "bias", ""):  # PositionedAttention: ALiBi or T5 from the ids (model.positions holds them)
        bias = attn.position_bias(q, k)  # [rows, head, width, width]
    elif attn.cfg.positional_embedding_type == "alibi":  # TransformerLens's: a function of index differences
        if attn.alibi is None or n > attn.alibi.size(-1):
            attn.alibi = AbstractAttention.create_alibi_bias(attn.cfg.n_heads, n, x.device)
        bias = attn.alibi[None, :, :n, :n]  # [1, head, width, width]
    c = _temperature(attn, packed, factor)
    if c is not None:
        q_ = q_ * c[..., None].to(q_.dtype)
        bias = None if bias is None else bias * c[..., None].to(bias.dtype)
    full = mask if bias is None else bias.to(q_.dtype).masked_fill(~mask, float("-inf"))
    z = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=full, scale=1.0 / float(attn.attn_scale))
    return z.transpose(1, 2).reshape(x.shape[0], n, -1)  # [rows, width, head * d_head]


def _out(attn: AbstractAttention, z: torch.Tensor) -> torch.Tensor:
    """The attention output projection of ``z`` [..., head * d_head] -> [..., d_model]."""
    w = attn.W_O.reshape(-1, attn.W_O.shape[-1])  # [head * d_head, d_model]
    return F.linear(z.to(w.dtype), w.T, attn.b_O)


def _embed(model, packed: Packed) -> torch.Tensor:
    """The residual stream entering the first block, [rows, width, d_model]."""
    x = model.embed(packed.tokens)  # [rows, width, d_model]
    if model.cfg.positional_embedding_type != "standard":  # rotary, alibi: nothing added
        return x
    if type(model.pos_embed) is PosEmbed:  # TransformerLens's table, read by token index
        return x + lookup(model.pos_embed.W_pos, packed.index)
    return x + model.pos_embed(packed.tokens)  # comp's modules read model.positions.ids


def packed_loss_sum(model, packed: Packed) -> torch.Tensor:
    """Summed cross-entropy of ``packed``'s answer tokens under ``model`` (training forward,
    :func:`packable` models; run inside ``model.sampled_positions`` of the padded batch,
    whose jitter factors it reads by sequence)."""
    factor = model.jitter.factor
    mask = packed.mask
    rows, width = packed.tokens.shape
    *first, last = model.blocks
    try:
        model.positions.ids = packed.ids if model.encoding.uses_ids else None
        x = _embed(model, packed)  # [rows, width, d_model]
        for block in first:
            x = x + _out(block.attn, _attention_z(block.attn, block.ln1(x), packed, mask, factor))
            if not model.cfg.attn_only:
                x = x + block.apply_mlp(block.ln2(x))
        z = _attention_z(last.attn, last.ln1(x), packed, mask, factor)  # [rows, width, head * d_head]
    finally:
        model.positions.ids = None
    # the last block from here on, at the scored positions only
    x = x.reshape(rows * width, -1)[packed.scored] + _out(last.attn, z.reshape(rows * width, -1)[packed.scored])
    x = x[None]  # [1, answers, d_model]
    if not model.cfg.attn_only:
        x = x + last.apply_mlp(last.ln2(x))
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    logits = apply_softcap(model.unembed(x), model.cfg.output_logits_soft_cap)[0]  # [answers, d_vocab]
    return F.cross_entropy(logits.float(), packed.targets, reduction="sum")
