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

from comp.circuits.last_layer import plain_attention
from comp.model.packed import qkv


def applies(model) -> bool:
    """Whether every block is a plain pre-norm rotary block this module writes out."""
    cfg = model.cfg
    return (cfg.positional_embedding_type == "rotary" and not cfg.parallel_attn_mlp and not cfg.use_attn_in
            and not cfg.use_split_qkv_input and not cfg.use_hook_mlp_in and not cfg.use_normalization_before_and_after
            and not cfg.use_attn_result and not getattr(getattr(model, "encoding", None), "uses_ids", False)
            and all(plain_attention(model, layer) for layer in range(cfg.n_layers)))


@torch.no_grad()
def run(model, tokens: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor], start: int,
        wanted: set[str], at: torch.Tensor) -> tuple[torch.Tensor, dict, set[str]]:
    """Logits ``[B, 1, d_vocab]`` at each row's query ``start + at[b]`` of ``tokens`` [B, n]
    (positions ``start..``; ``keys``/``values``: per layer the clean run's ``[B, start, head,
    d_head]`` before them), the ``wanted`` hooks' values, and the names among them that hold
    the last layer's query only (``[B, 1, ...]``; scores ``[B, head, 1, keys]``)."""
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
        h = block.ln1(x)
        q, k, v = qkv(attn, h)  # one product: [B, n, head, d_head] each
        keep(name("q"), q)
        keep(name("k"), k)
        keep(name("v"), v)
        all_k = torch.cat([keys[layer], k], dim=1)  # [B, start + n, head, d_head]
        all_v = torch.cat([values[layer], v], dim=1)
        rot_q = attn.apply_rotary(q, start)  # positions start..start + n - 1
        rot_k = attn.apply_rotary(all_k, 0)
        final = layer == last
        if final:  # the last layer's attention at each row's query only
            rot_q, x = rot_q[rows, at][:, None], x[rows, at][:, None]  # [B, 1, head, d_head], [B, 1, d_model]
            pos = (start + at)[:, None]  # [B, 1]
        else:
            pos = (start + torch.arange(n, device=tokens.device))[None].expand(len(tokens), n)  # [B, n]
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
            mlp_out = block.apply_mlp(block.ln2(resid_mid))
            keep(name("mlp_out"), mlp_out, final)
            x = resid_mid + mlp_out
        keep(name("resid_post"), x, final)
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    return model.unembed(x), cache, query_only
