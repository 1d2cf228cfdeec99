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

from comp.circuits.interventions import Prefix

SCORES = ("attn_scores", "pattern")  # [B, head, query, key]: only later queries are read


def needed(n_layers: int, wanted: "set[str]" = frozenset()) -> set[str]:
    """The clean cache's hooks a corrupted run that reads ``wanted`` starts from."""
    kv = {utils.get_act_name(kind, layer) for kind in ("k", "v") for layer in range(n_layers)}
    return {"hook_embed"} | kv | {n for n in wanted if not n.endswith(SCORES)}


def divergence(model, tokens: torch.Tensor, clean_cache, end: int, ids: "torch.Tensor | None",
               wanted: "set[str]" = frozenset()) -> int:
    """The first position ``< end`` whose token embedding differs from the clean run's in
    any row of ``tokens`` [B, pos] (the corrupted input); 0 when the clean cache lacks a
    hook of :func:`needed` or the model reads position ids."""
    if ids is not None or not all(name in clean_cache for name in needed(model.cfg.n_layers, wanted)):
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


@torch.no_grad()
def corrupted_run(model, tokens: torch.Tensor, clean_cache, start: int, wanted: set[str]):
    """Logits ``[B, pos - start, d_vocab]`` of ``tokens`` [B, pos] from position ``start`` on
    (the clean run's keys and values before it) and the cache of ``wanted`` hooks over all
    positions, the clean run's before ``start`` (``start`` from :func:`divergence`)."""
    n_layers = model.cfg.n_layers
    keys = [clean_cache[utils.get_act_name("k", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    values = [clean_cache[utils.get_act_name("v", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    rest = tokens[:, start:]
    logits, cache = model.run_with_cache(rest, past_kv_cache=Prefix(keys, values).kv_cache(1),
                                         attention_mask=torch.ones_like(rest), names_filter=lambda n: n in wanted)
    return logits, {name: _merged(clean_cache[name] if name in clean_cache else None, new, start, name)
                    for name, new in cache.items()}
