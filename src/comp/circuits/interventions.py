"""Batched interventions: many edited copies of one batch in one forward pass.

Every analysis here (ablating a head, patching a clean activation into a corrupted run,
keeping only a circuit) is the same operation: run the model on a batch of ``B``
sequences, and at some hooks replace part of an activation by a *source* activation of
the same shape. :func:`run_edited` does ``K`` such edits at once by stacking ``K``
copies of the batch along the batch dimension (``K * B`` rows, copy-major); copy ``k``
is edited where ``masks[hook][k]`` is true::

    act.view(K, B, pos, ...) = where(masks[hook][:, None], source[hook][None], act)

A mask is ``[K, pos, ...]``, broadcastable against the activation without its batch
dimension (``[K, pos, head, 1]`` for ``hook_z``, ``[K, pos, 1]`` for ``hook_resid_pre``
or ``hook_mlp_out``). One pass replaces ``K`` passes of TransformerLens's
one-patch-per-forward loop; copies are split into chunks of at most ``max_rows`` rows.

When no copy is edited before position ``p``, positions ``0..p-1`` are the same in every
copy and in the unedited run: a :class:`Prefix` hands their keys and values (from a
cache of the unedited run) to TransformerLens's key-value cache, and only positions
``p..`` are run (``tokens``, masks and sources then start at ``p``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformer_lens import utils
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry

from comp.model import pinned_positions
from comp.resources import chunk_size

Masks = dict[str, torch.Tensor]  # hook name -> [K, pos, ...] bool: where copy k takes the source
Sources = dict[str, torch.Tensor]  # hook name -> [B, pos, ...]: the values edited in

DEFAULT_MAX_ROWS = 8192


@dataclass
class Prefix:
    """What the unedited run says about the positions no copy edits.

    ``keys``/``values``: positions ``0..p-1`` at every layer, shared by all copies. When
    the edits touch only position ``p`` at layers below ``resume`` and write only to
    position ``p`` (head or MLP outputs), positions after ``p`` are unchanged up to layer
    ``resume``: only position ``p`` runs through those layers, and ``later`` (the
    unedited ``resid_pre`` of layer ``resume`` after ``p``) joins it from there.
    """

    keys: list[torch.Tensor]  # per layer [B, p, head, d_head] (blocks.{l}.attn.hook_k)
    values: list[torch.Tensor]  # per layer [B, p, head, d_head] (blocks.{l}.attn.hook_v)
    resume: int = 0  # layer where `later` joins; 0: every position runs every layer
    later: "torch.Tensor | None" = None  # [B, pos - p - 1, d_model] unedited resid_pre of layer `resume`
    pos_embed: "torch.Tensor | None" = None  # [B, pos - p, d_model] shortformer position embeddings from p
    ids: "torch.Tensor | None" = None  # [B, pos] position ids of the whole sequence (encodings that read ids)

    @classmethod
    def from_cache(cls, cache, n_layers: int, start: int, resume: int = 0, end: int = 0,
                   ids: "torch.Tensor | None" = None) -> "Prefix":
        """Positions before ``start`` of a run cached with :func:`prefix_hooks`; with
        ``resume``, positions ``start + 1 .. end - 1`` join at layer ``resume``. ``ids``:
        the position ids of the whole sequence, for models that read them."""
        keys = [cache[utils.get_act_name("k", layer)][:, :start] for layer in range(n_layers)]
        values = [cache[utils.get_act_name("v", layer)][:, :start] for layer in range(n_layers)]
        if not resume:
            return cls(keys, values, ids=ids)
        later = cache[utils.get_act_name("resid_pre", resume)][:, start + 1 : end]
        pos = cache["hook_pos_embed"][:, start:end] if "hook_pos_embed" in cache else None
        return cls(keys, values, resume, later, pos, ids)

    def kv_cache(self, copies: int) -> TransformerLensKeyValueCache:
        """A frozen TransformerLens cache holding the prefix once per copy (copy-major rows)."""
        entries = [TransformerLensKeyValueCacheEntry(k.repeat(copies, 1, 1, 1), v.repeat(copies, 1, 1, 1), frozen=True)
                   for k, v in zip(self.keys, self.values)]
        rows, length = copies * self.keys[0].shape[0], self.keys[0].shape[1]
        mask = torch.ones(rows, length, dtype=torch.int, device=self.keys[0].device)
        return TransformerLensKeyValueCache(entries, mask, frozen=True)

    def run(self, model, rows: torch.Tensor, hooks: list, copies: int) -> torch.Tensor:
        """Logits of ``rows`` [copies * B, pos] (the positions after the prefix), edited by ``hooks``."""
        with pinned_positions(model, None if self.ids is None else self.ids.repeat(copies, 1)):
            return self._run(model, rows, hooks, copies)

    def _run(self, model, rows: torch.Tensor, hooks: list, copies: int) -> torch.Tensor:
        ones = torch.ones_like(rows)
        if not self.resume:
            return model.run_with_hooks(rows, fwd_hooks=hooks, past_kv_cache=self.kv_cache(copies), attention_mask=ones)
        first = model.run_with_hooks(rows[:, :1], fwd_hooks=hooks, past_kv_cache=self.kv_cache(copies),
                                     attention_mask=ones[:, :1], stop_at_layer=self.resume)  # [rows, 1, d_model]
        resid = torch.cat([first, self.later.repeat(copies, 1, 1)], dim=1)  # [rows, pos, d_model]
        full = torch.ones(len(rows), self.keys[0].shape[1] + rows.shape[1], dtype=rows.dtype, device=rows.device)
        pos = None if self.pos_embed is None or model.cfg.positional_embedding_type != "shortformer" else self.pos_embed.repeat(copies, 1, 1)
        return model(resid, start_at_layer=self.resume, past_kv_cache=self.kv_cache(copies), attention_mask=full,
                     shortformer_pos_embed=pos)


def prefix_hooks(n_layers: int) -> set[str]:
    """The hooks a :class:`Prefix` is read from."""
    kinds = ("k", "v", "resid_pre")
    return {"hook_pos_embed"} | {utils.get_act_name(kind, layer) for kind in kinds for layer in range(n_layers)}


def n_copies(masks: Masks) -> int:
    sizes = {m.shape[0] for m in masks.values()}
    assert len(sizes) == 1, f"every mask needs the same number of copies, got {sizes}"
    return sizes.pop()


def _edit_hook(mask: torch.Tensor, source: torch.Tensor) -> Callable:
    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        k, b = mask.shape[0], source.shape[0]
        view = act.view(k, b, *act.shape[1:])  # [K, B, pos, ...]
        return torch.where(mask[:, None], source[None], view).view(act.shape)

    return hook


@torch.no_grad()
def run_edited(
    model,
    tokens: torch.Tensor,
    masks: Masks,
    sources: Sources,
    reduce: Callable[[torch.Tensor], torch.Tensor],
    max_rows: int = DEFAULT_MAX_ROWS,
    prefix: "Prefix | None" = None,
    ids: "torch.Tensor | None" = None,
    start: "tuple[int, torch.Tensor] | None" = None,
) -> torch.Tensor:
    """Run ``K`` edited copies of ``tokens`` [B, pos] and reduce each copy's logits.

    ``reduce`` maps logits ``[k, B, pos, d_vocab]`` to ``[k, ...]`` (a metric, or
    per-row scores) so that only the reduced values of each chunk are kept. With a
    ``prefix``, ``tokens`` are the positions after it. ``ids`` [B, pos]: position ids to
    pin (models that read ids; else they follow from the tokens). ``start``: ``(layer,
    resid_pre [B, pos, d_model])``, the copies start there (masks of later layers only).
    Returns ``[K, ...]``.
    """
    k_total, b = n_copies(masks), tokens.shape[0]
    width = tokens.shape[1] + (prefix.keys[0].shape[1] if prefix is not None else 0)
    fit = chunk_size(model.cfg, width, k_total * b, tokens.device, copies=b, what=f"{b} edited sequences",
                     lower="lower --n or use a shorter length")  # rows that fit one pass
    per_chunk = max(1, min(max_rows, fit) // b)
    outs = []
    for lo in range(0, k_total, per_chunk):
        chunk = {name: m[lo : lo + per_chunk].to(tokens.device) for name, m in masks.items()}
        k = next(iter(chunk.values())).shape[0]
        if prefix is not None and prefix.resume:  # the hooks see the first position only
            chunk, edits = {n: m[:, :1] for n, m in chunk.items()}, {n: v[:, :1] for n, v in sources.items()}
        else:
            edits = sources
        hooks = [(name, _edit_hook(m, edits[name])) for name, m in chunk.items()]
        rows = tokens.repeat(k, 1)  # [k * B, pos]
        if start is not None:
            logits = model.run_with_hooks(start[1].repeat(k, 1, 1), start_at_layer=start[0], fwd_hooks=hooks)
        elif prefix is None:
            with pinned_positions(model, None if ids is None else ids.repeat(k, 1)):
                logits = model.run_with_hooks(rows, fwd_hooks=hooks)  # [k * B, pos, d_vocab]
        else:
            logits = prefix.run(model, rows, hooks, k)
        outs.append(reduce(logits.view(k, b, *logits.shape[1:])))
    return torch.cat(outs)
