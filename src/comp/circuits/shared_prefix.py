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

from comp.circuits import last_layer, plain_run
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


@torch.no_grad()
def corrupted_run(model, tokens: torch.Tensor, clean_cache, start: int, wanted: set[str],
                  query: "torch.Tensor | None" = None):
    """Logits ``[B, pos - start, d_vocab]`` of ``tokens`` [B, pos] from position ``start`` on
    (the clean run's keys and values before it) and the cache of ``wanted`` hooks over all
    positions, the clean run's before ``start`` (``start`` from :func:`divergence`).

    With ``query`` [B] (each row's one read position) and a plain block
    (:func:`comp.circuits.last_layer.supported`), the last layer's MLP (and the unembedding)
    run at each row's query only: its residual stream is cut to that position after the
    attention (``hook_resid_mid``; ``hook_resid_post`` without MLPs), and the hooks from there
    on, and the logits, are NaN at the other positions."""
    n_layers = model.cfg.n_layers
    last = n_layers - 1
    keys = [clean_cache[utils.get_act_name("k", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    values = [clean_cache[utils.get_act_name("v", layer)][:, :start].to(tokens.device) for layer in range(n_layers)]
    rest = tokens[:, start:]
    kv, ones = Prefix(keys, values).kv_cache(1), torch.ones_like(rest)
    if query is None or not last_layer.supported(model, "z", last):
        logits, cache = model.run_with_cache(rest, past_kv_cache=kv, attention_mask=ones, names_filter=lambda n: n in wanted)
        return logits, Merged(clean_cache, dict(cache), start)
    at = (query.to(tokens.device) - start)[:, None, None]  # [B, 1, 1]: each row's query in `rest`
    if plain_run.applies(model):  # the same steps without TransformerLens's per-operator overhead
        logits, cache, query_only = plain_run.run(model, rest, keys, values, start, wanted, at[:, 0, 0],
                                                     clean_cache)
    else:
        cut = utils.get_act_name("resid_post" if model.cfg.attn_only else "resid_mid", last)

        def to_query(act: torch.Tensor, hook) -> torch.Tensor:  # [B, n, d_model] -> [B, 1, d_model]
            return act.gather(1, at.expand(-1, 1, act.shape[-1]))

        cache, hooks, _ = model.get_caching_hooks(lambda n: n in wanted)
        with model.hooks(fwd_hooks=[(cut, to_query), *hooks]):
            logits = model(rest, past_kv_cache=kv, attention_mask=ones)  # [B, 1, d_vocab]
        query_only = set(cache) & _after(model, cut)
    rows = torch.arange(len(at), device=tokens.device)
    for name in query_only:  # [B, 1, ...] -> [B, n, ...] (scores [B, head, n, keys]), NaN but at the queries
        value = cache[name]
        if name.endswith(SCORES):
            cache[name] = value.new_full((*value.shape[:2], rest.shape[1], value.shape[-1]), float("nan"))
            cache[name][rows, :, at[:, 0, 0]] = value[:, :, 0]
        else:
            cache[name] = value.new_full((len(at), rest.shape[1], *value.shape[2:]), float("nan"))
            cache[name][rows, at[:, 0, 0]] = value[:, 0]
    full = logits.new_full((len(at), rest.shape[1], logits.shape[-1]), float("nan"))
    full[rows, at[:, 0, 0]] = logits[:, 0]
    return full, Merged(clean_cache, dict(cache), start)


def _after(model, cut: str) -> set[str]:
    """The hooks of the last block from ``cut`` on (``cut`` included)."""
    last = model.cfg.n_layers - 1
    names = [n for n in model.hook_dict if n.startswith(f"blocks.{last}.")]
    late = ("hook_resid_mid", "ln2.", "mlp.", "hook_mlp_in", "hook_mlp_out", "hook_resid_post")
    if model.cfg.attn_only:
        late = ("hook_resid_post",)
    return {n for n in names if any(part in n for part in late)}


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
