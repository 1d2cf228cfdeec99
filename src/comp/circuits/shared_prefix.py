"""The corrupted run of a patching sweep, computed only from where it leaves the clean run.

A corruption changes some input tokens. Every position before the first changed one (in
any row) has the same inputs in both runs, and causal attention gives it the clean run's
activations there. So when the clean cache holds what this needs (the token embeddings,
to find that position; every layer's keys and values) the corrupted run starts at that
position, on the clean run's keys and values, and its cache before it is the clean one's
(the same tensors: those sites are no-ops of the sweep, bit for bit).

Models that read position ids (which may depend on every token) always run the whole
corrupted input; so does a clean cache without the hooks above (the caller's choice).
"""

from __future__ import annotations

import torch
from transformer_lens import utils
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry

from comp.circuits import last_layer
from comp.circuits.interventions import Prefix

SCORES = ("attn_scores", "pattern")  # [B, head, query, key]: only later queries are read


def needed(model, wanted: "set[str]" = frozenset()) -> set[str]:
    """The clean cache's hooks a corrupted run that reads ``wanted`` starts from (those the
    model has: ``hook_pos_embed`` with position embeddings, ``hook_rot_q`` with rotary, ...)."""
    kv = {utils.get_act_name(kind, layer) for kind in ("k", "v") for layer in range(model.cfg.n_layers)}
    cfg = model.cfg
    absent = () if cfg.positional_embedding_type in ("standard", "shortformer") else ("hook_pos_embed",)
    absent += () if cfg.positional_embedding_type == "rotary" else ("rot_q", "rot_k")
    absent += ("resid_mid", "mlp_out") if cfg.attn_only else ()
    return {"hook_embed"} | kv | {n for n in wanted if not n.endswith(SCORES + absent)}


def divergence(model, tokens: torch.Tensor, clean_cache, end: int, ids: "torch.Tensor | None",
               wanted: "set[str]" = frozenset()) -> int:
    """The first position ``< end`` whose token embedding differs from the clean run's in
    any row of ``tokens`` [B, pos] (the corrupted input); 0 when the clean cache lacks a
    hook of :func:`needed` or the model reads position ids."""
    if ids is not None or not all(name in clean_cache for name in needed(model, wanted)):
        return 0
    clean = clean_cache["hook_embed"]  # [B, pos, d_model]
    if clean.shape[:2] != tokens.shape:
        return 0
    differs = (model.embed(tokens[:, :end]) != clean[:, :end].to(tokens.device)).any(-1).any(0)  # [end]
    return int(differs.int().argmax()) if bool(differs.any()) else end


def _merged(clean: "torch.Tensor | None", new: torch.Tensor, start: int, name: str) -> torch.Tensor:
    """``new`` (positions ``start..``) after the clean run's positions before ``start``."""
    if name.endswith(SCORES):  # new queries see every key; earlier queries: the clean run's, or NaN
        head = clean[:, :, :start, : new.shape[-1]] if clean is not None else new.new_full(
            (*new.shape[:2], start, new.shape[-1]), float("nan"))
        return torch.cat([head.to(new.device), new], dim=2)
    return torch.cat([clean[:, :start].to(new.device), new], dim=1)


class _Stop(Exception):
    """Ends a forward once the last layer's keys and values are computed."""


def _stop(act: torch.Tensor, hook) -> None:
    raise _Stop


@torch.no_grad()
def corrupted_run(model, tokens: torch.Tensor, clean_cache, start: int, wanted: set[str],
                  query: "torch.Tensor | None" = None):
    """Logits ``[B, pos - start, d_vocab]`` of ``tokens`` [B, pos] from position ``start`` on
    (the clean run's keys and values before it) and the cache of ``wanted`` hooks over all
    positions, the clean run's before ``start`` (``start`` from :func:`divergence`).

    With ``query`` [B] (each row's one read position) and a plain block
    (:func:`comp.circuits.last_layer.supported`), the last layer runs at the queries only:
    its keys and values at every position, the rest of it (and the logits) at each row's
    query; its other hooks (and the logits) are NaN elsewhere."""
    n_layers = model.cfg.n_layers
    last = n_layers - 1
    keys = [clean_cache[utils.get_act_name("k", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    values = [clean_cache[utils.get_act_name("v", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    rest = tokens[:, start:]
    kv, ones = Prefix(keys, values).kv_cache(1), torch.ones_like(rest)
    if query is None or not last_layer.supported(model, "z", last):
        logits, cache = model.run_with_cache(rest, past_kv_cache=kv, attention_mask=ones, names_filter=lambda n: n in wanted)
        return logits, Merged(clean_cache, dict(cache), start)
    k_name, v_name, pre_name = (utils.get_act_name(kind, last) for kind in ("k", "v", "resid_pre"))
    cache, hooks, _ = model.get_caching_hooks(lambda n: n in wanted or n in (k_name, v_name, pre_name))
    with model.hooks(fwd_hooks=[*hooks, (v_name, _stop)]):  # every layer but the last, and its keys and values
        try:
            model(rest, past_kv_cache=kv, attention_mask=ones)
        except _Stop:
            pass
    merged = Merged(clean_cache, dict(cache), start)
    late = {n for n in wanted if n.startswith(f"blocks.{last}.") and n not in cache}
    logits = _at_queries(model, merged, late, query.to(tokens.device), tokens.shape[1])
    return logits[:, start:], merged


def _at_queries(model, merged: "Merged", late: set[str], query: torch.Tensor, end: int) -> torch.Tensor:
    """The last layer at each row's query, on the keys and values in ``merged``: its
    ``late`` hooks go into ``merged`` (NaN at other positions); returns logits ``[B, end, d_vocab]``
    (NaN but at the queries)."""
    last, n_layers = model.cfg.n_layers - 1, model.cfg.n_layers
    keys, values = merged[utils.get_act_name("k", last)], merged[utils.get_act_name("v", last)]  # [B, end, head, d_head]
    resid = merged[utils.get_act_name("resid_pre", last)]  # [B, end, d_model]
    shortformer = model.cfg.positional_embedding_type == "shortformer"
    logits, full = None, {}
    for q in query.unique().tolist():
        rows = (query == q).nonzero()[:, 0]
        entry = TransformerLensKeyValueCacheEntry(keys[rows, :q], values[rows, :q], frozen=True)
        mask = torch.ones(len(rows), q + 1, dtype=torch.int, device=resid.device)
        kv = TransformerLensKeyValueCache([entry] * n_layers, mask[:, :q], frozen=True)
        pos = merged["hook_pos_embed"][rows, q : q + 1] if shortformer else None
        out, cache = model.run_with_cache(resid[rows, q : q + 1], start_at_layer=last, past_kv_cache=kv,
                                          attention_mask=mask, shortformer_pos_embed=pos, names_filter=lambda n: n in late)
        if logits is None:
            logits = out.new_full((len(query), end, out.shape[-1]), float("nan"))
        logits[rows, q] = out[:, 0]
        for name, value in cache.items():  # [b, 1, ...] or scores [b, head, 1, q + 1]
            if name.endswith(SCORES):
                full.setdefault(name, value.new_full((len(query), value.shape[1], end, end), float("nan")))
                full[name][rows, :, q, : q + 1] = value[:, :, 0]
            else:
                full.setdefault(name, value.new_full((len(query), end, *value.shape[2:]), float("nan")))
                full[name][rows, q] = value[:, 0]
    for name, value in full.items():
        dict.__setitem__(merged, name, value)
        merged.joined.add(name)
    return logits


class Merged(dict):
    """The corrupted run's cache over all positions: each hook's positions ``start..`` after
    the clean run's before it, joined when first read (most hooks are read in part or not at all)."""

    def __init__(self, clean_cache, new: dict, start: int):
        super().__init__(new)
        self.clean_cache, self.start, self.joined = clean_cache, start, set()

    def __getitem__(self, name: str) -> torch.Tensor:
        value = super().__getitem__(name)
        if name not in self.joined:
            value = _merged(self.clean_cache[name] if name in self.clean_cache else None, value, self.start, name)
            self[name] = value
            self.joined.add(name)
        return value
