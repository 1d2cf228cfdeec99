"""The corrupted run of a patching sweep written out by hand, for TransformerLens's plain rotary blocks.

:func:`comp.circuits.shared_prefix.corrupted_run` runs positions ``start..`` on the clean
run's keys and values before them, the last layer at each row's query only. Through
TransformerLens that is one forward whose per-operator overhead (hook points, einops,
mask building, the key-value cache objects) costs more than its arithmetic at a few dozen
rows. For the blocks where the arithmetic is short (TransformerLens's own ``Attention``
with rotary positions and nothing of comp's on it: :func:`comp.circuits.last_layer.plain_attention`
in every layer) this module does the same steps directly::

    h = ln1(x); q, k, v = h @ W_Q + b_Q, h @ W_K + b_K, h @ W_V + b_V      # [B, n, head, d_head]
    scores = R(q) . R([k_clean_prefix, k]) / attn_scale, causal           # [B, head, n, start + n]
    z = softmax(scores) @ [v_clean_prefix, v]; resid_mid = x + z @ W_O + b_O
    resid_post = resid_mid + MLP(ln2(resid_mid))                          # the blocks' own modules

with the last layer's queries (and everything after its attention) at each row's query
only. The cached hooks hold the values TransformerLens's hooks would (tests: equal to
the whole corrupted run to 1e-10 in float64).
"""

from __future__ import annotations

import torch
from transformer_lens import utils

from comp.circuits.arithmetic import layer_norm, projections
from comp.circuits.arithmetic import mlp_out as block_mlp
from comp.circuits.last_layer import _rotate, plain_attention


def applies(model) -> bool:
    """Whether every block is a plain pre-norm rotary block this module writes out."""
    cfg = model.cfg
    return (cfg.positional_embedding_type == "rotary" and not cfg.parallel_attn_mlp and not cfg.use_attn_in
            and not cfg.use_split_qkv_input and not cfg.use_hook_mlp_in and not cfg.use_normalization_before_and_after
            and not cfg.use_attn_result and not getattr(getattr(model, "encoding", None), "uses_ids", False)
            and all(plain_attention(model, layer) for layer in range(cfg.n_layers)))


@torch.no_grad()
def run(model, tokens: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor], start: int,
        wanted: set[str], at: torch.Tensor, clean_cache=None) -> tuple[torch.Tensor, dict, set[str]]:
    """Logits ``[B, 1, d_vocab]`` at each row's query ``start + at[b]`` of ``tokens`` [B, n]
    (positions ``start..``; ``keys``/``values``: per layer the clean run's ``[B, start, head,
    d_head]`` before them), the ``wanted`` hooks' values, and the names among them that hold
    the last layer's query only (``[B, 1, ...]``; scores ``[B, head, 1, keys]``; the last
    layer's queries too). With the clean run's cache (holding the first layer's ``hook_q``,
    ``hook_k``, ``hook_v``), the first layer projects only the changed tokens (:func:`_first_qkv`)."""
    cache: dict[str, torch.Tensor] = {}
    query_only: set[str] = set()
    last, n = model.cfg.n_layers - 1, tokens.shape[1]
    rows = torch.arange(len(tokens), device=tokens.device)

    def keep(name: str, value: torch.Tensor, only_query: bool = False) -> None:
        if name in wanted:
            cache[name] = value
            if only_query:
                query_only.add(name)

    x = model.embed(tokens)  # [B, n, d_model]
    keep("hook_embed", x)
    seen = torch.arange(start + n, device=tokens.device)  # key positions
    for layer, block in enumerate(model.blocks):
        attn, name = block.attn, lambda kind: utils.get_act_name(kind, layer)  # noqa: B023
        keep(name("resid_pre"), x)
        final = layer == last
        if final:  # the last layer's attention at each row's query only: keys and values everywhere
            h = layer_norm(block.ln1, x)  # [B, n, d_model]
            k, v = projections(attn, h, "KV")  # [B, n, head, d_head]
            x = x[rows, at][:, None]  # [B, 1, d_model]
            (q,) = projections(attn, h[rows, at][:, None], "Q")  # [B, 1, head, d_head]
            rot_q = _rotate(model, attn, q, start + at, None)
            pos = (start + at)[:, None]  # [B, 1]
        else:
            qkv = _first_qkv(attn, block, x, clean_cache, start) if layer == 0 else None
            q, k, v = qkv or projections(attn, layer_norm(block.ln1, x), "QKV")  # one product: [B, n, head, d_head]
            rot_q = attn.apply_rotary(q, start)  # positions start..start + n - 1
            pos = (start + torch.arange(n, device=tokens.device))[None].expand(len(tokens), n)  # [B, n]
        keep(name("q"), q, final)
        keep(name("k"), k)
        keep(name("v"), v)
        all_k = torch.cat([keys[layer], k], dim=1)  # [B, start + n, head, d_head]
        all_v = torch.cat([values[layer], v], dim=1)
        rot_k = attn.apply_rotary(all_k, 0)
        keep(name("rot_q"), rot_q, final)
        scores = torch.einsum("bqhd,bkhd->bhqk", rot_q, rot_k) / attn.attn_scale  # [B, head, queries, keys]
        scores = scores.masked_fill((seen[None, None] > pos[:, :, None])[:, None], attn.IGNORE.item())
        keep(name("attn_scores"), scores, final)
        pattern = (scores - scores.amax(-1, keepdim=True)).exp()  # softmax by exp: torch's float64 softmax is slow
        pattern = pattern / pattern.sum(-1, keepdim=True)
        keep(name("pattern"), pattern, final)
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, all_v)  # [B, queries, head, d_head]
        keep(name("z"), z, final)
        attn_out = torch.einsum("bqhd,hdm->bqm", z, attn.W_O) + attn.b_O
        keep(name("attn_out"), attn_out, final)
        resid_mid = x + attn_out
        if model.cfg.attn_only:
            x = resid_mid
        else:
            keep(name("resid_mid"), resid_mid, final)
            mlp_out = block_mlp(block, resid_mid)
            keep(name("mlp_out"), mlp_out, final)
            x = resid_mid + mlp_out
        keep(name("resid_post"), x, final)
    if model.cfg.normalization_type is not None:
        x = layer_norm(model.ln_final, x)
    return model.unembed(x), cache, query_only


def _first_qkv(attn, block, x: torch.Tensor, clean_cache, start: int) -> "tuple[torch.Tensor, ...] | None":
    """The first layer's queries, keys and values [B, n, head, d_head] at positions ``start..``
    of ``x`` [B, n, d_model] (its input, the token embeddings): the clean run's where the
    embedding is the clean one, projected only where it changed (a flipped bit: one position
    of each row). None when the clean cache lacks those hooks."""
    names = [utils.get_act_name(kind, 0) for kind in ("q", "k", "v")] + ["hook_embed"]
    if clean_cache is None or not all(name in clean_cache for name in names):
        return None
    n = x.shape[1]
    *clean, embed = (clean_cache[name][:, start : start + n].to(x.device) for name in names)
    if embed.shape != x.shape:
        return None
    changed = (x != embed).any(-1).nonzero(as_tuple=True)  # ([m], [m]): rows and positions
    out = tuple(t.clone() for t in clean)
    for t, new in zip(out, projections(attn, layer_norm(block.ln1, x[changed]), "QKV")):  # [m, head, d_head]
        t[changed] = new
    return out
