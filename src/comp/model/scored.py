"""Training forward that computes the last block only where a prediction is scored.

The loss reads the logits of the answer region only (positions from the end-of-input
token on). Every position still feeds the keys and values of every layer, but after the
last block nothing reads a position whose prediction is not scored: its query, attention
output, MLP, final norm and unembedding in the last block are wasted work. For parity
1-16 that is about half of the last block. :func:`scored_logits` runs the blocks before
the last one on all positions (TransformerLens's own forward, ``stop_at_layer``), then
the last block with its queries only at positions ``start..`` (keys and values at all of
them; queries at the end of a sequence are what the fused attention of
:mod:`comp.model.fused` already supports: rotary and position biases read the ids of the
last ``n_query`` positions), and returns ``logits[:, start:]``, equal to the full
forward's to float rounding (tests/test_scored.py, every encoding).

It applies in training mode inside :func:`comp.model.fused.fused_training`, when no hook
is attached anywhere in the model and the last block is a plain pre-norm block (no
shortformer embedding, no parallel attention and MLP, no split inputs); otherwise it is
the full forward, sliced. Analyses never come here.
"""

from __future__ import annotations

import contextlib

import torch
from transformer_lens.utils import apply_softcap

from comp.model.fused import _fusable, _hooked, attention_forward


def _tail_ok(model) -> bool:
    """Whether the last block can run with fewer queries than keys (see the module docstring)."""
    cfg, last = model.cfg, model.blocks[-1]
    return (
        model.training
        and cfg.n_layers >= 1
        and cfg.positional_embedding_type != "shortformer"
        and not cfg.parallel_attn_mlp
        and not cfg.use_attn_in
        and not cfg.use_split_qkv_input
        and not cfg.use_hook_mlp_in
        and not cfg.use_normalization_before_and_after
        and getattr(last.attn.forward, "__func__", None) is attention_forward  # inside fused_training
        and _fusable(last.attn, None, None, None, None)
        and not _hooked(*model.hook_dict.values())
    )


def last_block(block, resid: torch.Tensor, start: int) -> torch.Tensor:
    """``block``'s output at positions ``start..`` of ``resid`` [batch, pos, d_model]:
    queries there, keys and values at every position. Returns [batch, pos - start, d_model]."""
    normed = block.ln1(resid)  # [batch, pos, d_model]
    attn_out = block.attn(query_input=normed[:, start:], key_input=normed, value_input=normed)  # [batch, q, d_model]
    resid_mid = resid[:, start:] + attn_out  # [batch, q, d_model]
    if block.cfg.attn_only:
        return resid_mid
    return resid_mid + block.apply_mlp(block.ln2(resid_mid))  # [batch, q, d_model]


def scored_logits(model, tokens: torch.Tensor, start: int) -> torch.Tensor:
    """``model(tokens)[:, start:]`` [batch, pos - start, d_vocab], the last block computed
    only at those positions when it can be (:func:`_tail_ok`)."""
    if start <= 0 or not _tail_ok(model):
        return model(tokens)[:, start:]
    uses_ids = model.encoding.uses_ids
    with contextlib.ExitStack() as stack:
        if uses_ids and model._pinned is None:  # ids of these tokens, the same for both halves of the forward
            stack.enter_context(model.use_position_ids(model._forward_ids(tokens)))
        resid = model(tokens, stop_at_layer=model.cfg.n_layers - 1)  # [batch, pos, d_model]
        if uses_ids:
            model.positions.ids = model._forward_ids(tokens)  # the pinned ids (the forward cleared them)
            stack.callback(setattr, model.positions, "ids", None)
        resid = last_block(model.blocks[-1], resid, start)  # [batch, pos - start, d_model]
    if model.cfg.normalization_type is not None:
        resid = model.ln_final(resid)
    return apply_softcap(model.unembed(resid), model.cfg.output_logits_soft_cap)  # [batch, pos - start, d_vocab]
