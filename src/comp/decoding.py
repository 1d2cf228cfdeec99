"""Greedy decoding of the answer region: key-value cached, exact, bounded in memory.

Three ways to get the greedy decoding of a batch, all giving the same tokens:

- :func:`greedy_decode_uncached`: the reference. One full forward over the prefix per
  decoded token, ``O(width^2)`` tokens of work per row; only for tests and benchmarks.
- :func:`greedy_decode`: TransformerLens's ``TransformerLensKeyValueCache``: one
  forward over the prompt (or any prefix known to be right), then one token at a time
  against the cached keys and values. Encodings that read position ids get the ids of
  the full-length row (the task layout fixes them; random ids depend on the whole row),
  so rotary, ALiBi and T5 biases, coupled ids and the ``logn`` attention scale see
  exactly what a full forward sees.
- :func:`decode_after_errors`: the fast exact path for evaluation. A teacher-forced
  forward has already predicted every position from the *true* prefix; greedy decoding
  reproduces the targets up to a row's first teacher-forced error, so a row with no error
  is decoded right without decoding, and a row whose first error is at position ``p``
  is decoded with the cache from ``p`` on, its prefix ``tokens[:p]`` prefilled in one
  forward. Rows are sorted by first error and decoded in chunks whose key-value cache fits
  :data:`DECODE_BUDGET` bytes (:func:`decode_rows`).

The identity that makes the last exact needs the teacher-forced and the cached forward to
agree on every argmax; they do in float32 (the same kernels up to summation order); under
bf16 autocast on a GPU a near tie can flip, which is why evaluation decodes the failing
rows for real and never trusts the identity for them.
"""

from __future__ import annotations

import contextlib

import torch
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from comp.tasks import Batch

DECODE_BUDGET = 2**28  # bytes of key-value cache per decoded chunk (256 MB)


def cache_bytes_per_row(cfg, width: int) -> int:
    """Bytes one row's key-value cache takes at ``width`` tokens (float32 keys and values of
    every layer, twice: TransformerLens appends by concatenation, so old and new coexist)."""
    return 2 * cfg.n_layers * 2 * width * cfg.n_heads * cfg.d_head * 4


def decode_rows(cfg, width: int, budget: int = DECODE_BUDGET) -> int:
    """Rows per chunk whose cache fits ``budget`` bytes (at least 1)."""
    return max(1, budget // cache_bytes_per_row(cfg, width))


def _pinned_layout(model, tokens: torch.Tensor):
    """Pin the ids of the full-length rows (encodings that read ids), else nothing."""
    if getattr(model.encoding, "uses_ids", False):
        return model.use_position_ids(model.position_ids(tokens))
    return contextlib.nullcontext()


@torch.no_grad()
def greedy_decode(model, batch: Batch, start: "int | None" = None) -> torch.Tensor:
    """``batch.tokens`` [batch, pos] with positions from ``start`` on (default: the answer
    start) replaced by the model's greedy decoding, with a key-value cache.

    Positions before ``start`` are kept as given (they must be what greedy decoding would
    produce there: the prompt, or a prefix known to be right). All rows share one width.
    """
    start = int(batch.answer_start[0]) if start is None else start
    tokens = batch.tokens.clone()
    width = tokens.shape[1]
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, tokens.device, tokens.shape[0])
    with _pinned_layout(model, batch.tokens):
        prefix = tokens[:, :start]
        logits = model(prefix, past_kv_cache=cache, attention_mask=torch.ones_like(prefix))
        for pos in range(start, width):
            tokens[:, pos] = logits[:, -1].argmax(-1)  # [batch]
            if pos + 1 < width:
                step = tokens[:, pos : pos + 1]
                logits = model(step, past_kv_cache=cache, attention_mask=torch.ones_like(step))
    return tokens


@torch.no_grad()
def greedy_decode_uncached(model, batch: Batch) -> torch.Tensor:
    """The reference: each answer token from a full forward over the prefix decoded so far."""
    start = int(batch.answer_start[0])
    tokens = batch.tokens.clone()
    ids = model.position_ids(batch.tokens) if getattr(model.encoding, "uses_ids", False) else None
    for pos in range(start, tokens.shape[1]):
        pin = model.use_position_ids(ids[:, :pos]) if ids is not None else contextlib.nullcontext()
        with pin:
            logits = model(tokens[:, :pos])  # [batch, pos, d_vocab]
        tokens[:, pos] = logits[:, -1].argmax(-1)
    return tokens


def first_errors(batch: Batch, preds: torch.Tensor) -> torch.Tensor:
    """[batch] position of each row's first wrong teacher-forced answer prediction (the width if none)."""
    wrong = (preds != batch.tokens) & batch.loss_mask  # [batch, pos]
    width = batch.tokens.shape[1]
    return torch.where(wrong.any(1), wrong.int().argmax(1), width)


@torch.no_grad()
def decode_after_errors(model, batch: Batch, preds: torch.Tensor, budget: int = DECODE_BUDGET) -> torch.Tensor:
    """The greedy decoding of every row, given the teacher-forced predictions ``preds`` [batch, pos]:
    rows without an error are their targets; the others are decoded from their first error,
    sorted by it, in chunks of :func:`decode_rows` rows."""
    out = batch.tokens.clone()
    first = first_errors(batch, preds)
    width = batch.tokens.shape[1]
    wrong = (first < width).nonzero()[:, 0]
    if not len(wrong):
        return out
    wrong = wrong[first[wrong].argsort()]  # similar prefixes share a chunk
    rows = decode_rows(model.cfg, width, budget)
    for lo in range(0, len(wrong), rows):
        idx = wrong[lo : lo + rows]
        out[idx] = greedy_decode(model, batch.select(idx), start=int(first[idx].min()))
    return out
