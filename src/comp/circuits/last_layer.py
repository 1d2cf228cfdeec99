"""Patches that reach the metric through the last layer only: exact, without running earlier layers again.

The metric (:class:`comp.circuits.patching.LogitDiff`) reads one position per row, its
*query* ``q``. Two kinds of patch change the residual stream at a single position up to
the last layer ``L``, and their effect on the logits at ``q`` has a cheap exact form:

- **after the last attention** (``hook_z`` or ``hook_mlp_out`` of layer ``L`` at ``q``): the
  last attention's output at ``q`` moves by ``(z_clean - z) @ W_O[h]`` (or the MLP output is
  swapped); the rest of the block at ``q`` (``ln2``, the MLP) and the unembedding run on
  that one position, row by row;
- **before the last attention** (``hook_resid_pre`` of layer ``L``; ``hook_z`` or
  ``hook_mlp_out`` of layer ``L - 1``) at a position ``p <= q``: only ``resid_pre`` of layer
  ``L`` at ``p`` differs from the corrupted run (heads and MLPs write to their own
  position). The new ``resid_pre`` at ``p`` is computed in closed form (the MLP of layer
  ``L - 1`` rerun at ``p`` alone), its key and value at layer ``L`` replace the corrupted
  ones at ``p`` (keys before rotation: TransformerLens rotates cached keys itself), and
  layer ``L`` runs for the query position only, on that key-value cache
  (``start_at_layer=L``). Every variant of every position is one row of one pass.

Nothing before layer ``L - 1`` is recomputed, and no position but ``p`` and ``q`` is; the
results equal TransformerLens's one-forward-per-patch loop (tests: every encoding).
"""

from __future__ import annotations

import torch
from transformer_lens import utils
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry
from transformer_lens.components import Attention
from transformer_lens.components.abstract_attention import AbstractAttention

from comp.circuits.arithmetic import layer_norm, mlp_out, projections
from comp.model import pinned_positions

KINDS = ("z", "mlp_out", "resid_pre")  # activations this module patches


def supported(model, activation_name: str, layer: int) -> bool:
    """Whether a patch of ``activation_name`` at ``layer`` has the exact form above
    (a pre-LayerNorm block of attention then MLP, as comp builds them)."""
    cfg, last = model.cfg, model.cfg.n_layers - 1
    plain = not (cfg.parallel_attn_mlp or cfg.use_split_qkv_input or cfg.use_attn_in or cfg.use_hook_mlp_in
                 or cfg.use_normalization_before_and_after or cfg.output_logits_soft_cap > 0
                 or cfg.attn_scores_soft_cap > 0 or cfg.use_logn_attn or cfg.use_attention_sinks
                 or cfg.attention_dir != "causal" or model.training)
    if not plain or activation_name not in KINDS or (activation_name == "mlp_out" and cfg.attn_only):
        return False
    return layer == last or (layer == last - 1 and activation_name != "resid_pre")


def cache_hooks(n_layers: int) -> set[str]:
    """The corrupted run's activations this module reads."""
    last = n_layers - 1
    names = {utils.get_act_name(k, last) for k in ("resid_pre", "resid_mid", "resid_post", "k", "v", "q", "rot_q",
                                                   "attn_scores", "z")}
    if last:
        names |= {utils.get_act_name("resid_mid", last - 1), utils.get_act_name("resid_post", last - 1)}
    return names | {"hook_pos_embed"}


def _resid_mid(model, cache, layer: int) -> torch.Tensor:
    """``[B, pos, d_model]``: the residual stream after the attention of ``layer`` (attention-only
    models have no ``hook_resid_mid``: there it is ``resid_post``)."""
    return cache[utils.get_act_name("resid_post" if model.cfg.attn_only else "resid_mid", layer)]


def _mlp(block, resid_mid: torch.Tensor) -> torch.Tensor:
    """``resid_post`` of a block from its ``resid_mid`` [..., d_model] (position-wise)."""
    if block.cfg.attn_only:
        return resid_mid
    return resid_mid + mlp_out(block, resid_mid)


def _head_delta(model, layer: int, dz: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    """``[K, B, d_model]``: what changing head ``heads[k]``'s ``z`` by ``dz[k]`` [K, B, d_head] adds."""
    w_o = model.blocks[layer].attn.W_O[heads]  # [K, d_head, d_model]
    return torch.einsum("kbd,kdm->kbm", dz, w_o)


def after_attention(model, cache, clean_cache, activation_name: str, sites: torch.Tensor,
                    query: torch.Tensor) -> torch.Tensor:
    """``[K, B, d_vocab]``: logits at each row's query after patching ``sites`` [K, 1 or 2]
    (``(pos,)`` or ``(pos, head)``) of the last layer's ``hook_z`` / ``hook_mlp_out``; rows
    whose query is not the site's position are the corrupted run's."""
    last = model.cfg.n_layers - 1
    rows = torch.arange(len(query), device=query.device)
    name = utils.get_act_name(activation_name, last)
    resid_mid = _resid_mid(model, cache, last)[rows, query]  # [B, d_model]
    resid_mid = resid_mid.expand(len(sites), *resid_mid.shape).clone()  # [K, B, d_model]
    hit = sites[:, 0, None].to(query.device) == query[None]  # [K, B]: the site is this row's query
    clean = clean_cache[name][rows, query].to(resid_mid.device)  # [B, (head, d_head | d_model)]
    if activation_name == "z":
        heads = sites[:, 1].to(query.device)
        dz = clean[:, heads].transpose(0, 1) - cache[name][rows, query][:, heads].transpose(0, 1)  # [K, B, d_head]
        resid_mid = resid_mid + _head_delta(model, last, dz, heads) * hit[..., None]
        resid_post = _mlp(model.blocks[last], resid_mid)
    else:  # the MLP's output swapped for the clean one; other rows: the corrupted run's, from its cache
        corrupted = cache[utils.get_act_name("resid_post", last)][rows, query]  # [B, d_model]
        resid_post = torch.where(hit[..., None], resid_mid + clean[None], corrupted[None])
    return unembed(model, resid_post)


def new_resid(model, cache, clean_cache, activation_name: str, layer: int, sites: torch.Tensor) -> torch.Tensor:
    """``[K, B, d_model]``: ``resid_pre`` of the last layer at each site's position after
    patching the site (``hook_resid_pre`` of the last layer, or ``hook_z`` / ``hook_mlp_out``
    of the layer before it)."""
    pos = sites[:, 0]
    name = utils.get_act_name(activation_name, layer)
    clean = clean_cache[name][:, pos].transpose(0, 1)  # [K, B, ...]
    if activation_name == "resid_pre":
        return clean.to(cache[name].device)
    resid_mid = _resid_mid(model, cache, layer)[:, pos].transpose(0, 1)  # [K, B, d_model]
    if activation_name == "mlp_out":
        return resid_mid + clean.to(resid_mid.device)
    heads = sites[:, 1]
    k = torch.arange(len(sites))
    dz = clean.to(resid_mid.device)[k, :, heads] - cache[name][:, pos].transpose(0, 1)[k, :, heads]  # [K, B, d_head]
    return _mlp(model.blocks[layer], resid_mid + _head_delta(model, layer, dz, heads))


def clean_kv(model, clean_cache, activation_name: str, layer: int, sites: torch.Tensor
             ) -> "tuple[torch.Tensor, torch.Tensor] | None":
    """The last layer's keys and values [K, B, head, d_head] after patching ``sites`` where the
    clean cache holds them: a patched ``resid_pre`` of the last layer is the clean run's there."""
    names = [utils.get_act_name(kind, layer) for kind in ("k", "v")]
    if activation_name != "resid_pre" or layer != model.cfg.n_layers - 1 or not all(n in clean_cache for n in names):
        return None
    pos = sites[:, 0]
    return tuple(clean_cache[name][:, pos].transpose(0, 1) for name in names)


def before_attention(model, cache, resid: torch.Tensor, pos: torch.Tensor, query: torch.Tensor,
                     corrupted: torch.Tensor, ids: "torch.Tensor | None", max_rows: int,
                     new_kv: "tuple[torch.Tensor, torch.Tensor] | None" = None) -> torch.Tensor:
    """``[K, B, d_vocab]``: logits at each row's query when the last layer's ``resid_pre`` at
    ``pos[k]`` is ``resid[k]`` [K, B, d_model] (the corrupted run's elsewhere). Rows whose
    query is before ``pos[k]`` keep ``corrupted`` [B, d_vocab], the corrupted run's logits
    at the queries. Per query position, variants before it change one key and value
    (:func:`_one_key_mid`); variants at it run the last layer there (:func:`_own_position_mid`, or
    TransformerLens's forward on the key-value cache, :func:`_last_layer`). ``new_kv``: the last
    layer's keys and values (before rotation) of ``resid`` [K, B, head, d_head] where they are
    known (a patched ``resid_pre``: the clean run's), else projected here."""
    last = model.cfg.n_layers - 1
    keys, values = cache[utils.get_act_name("k", last)], cache[utils.get_act_name("v", last)]  # [B, pos, head, d_head]
    out = corrupted.expand(len(pos), *corrupted.shape).clone()  # [K, B, d_vocab]
    pos = pos.to(query.device)
    pending = []  # (variants, rows, resid_mid [k, b, d_model]): the MLP and unembedding run once for all
    for q in query.unique().tolist():
        rows = (query == q).nonzero()[:, 0]  # [b]
        per = max(1, max_rows // len(rows))
        at = (pos == q).nonzero()[:, 0]
        for lo in range(0, len(at), per):
            ks = at[lo : lo + per]
            if ids is None and plain_attention(model):
                pending.append((ks, rows, _own_position_mid(model, cache, resid[ks][:, rows], rows, q)))
                continue
            past = [t[rows, :q][None].expand(len(ks), *t[rows, :q].shape) for t in (keys, values)]
            out[ks[:, None], rows[None]] = _last_layer(model, resid[ks][:, rows], *past, _ids(ids, rows, q),
                                                      _pos_embed(model, cache, rows, q))
        before = (pos < q).nonzero()[:, 0]  # variants after q leave these rows as they are
        for lo in range(0, len(before), per):
            ks = before[lo : lo + per]
            kv = None if new_kv is None else tuple(t[ks][:, rows] for t in new_kv)
            pending.append((ks, rows, _one_key_mid(model, cache, resid[ks][:, rows], pos[ks], rows, q, ids, kv)))
    if pending:  # one MLP and unembedding for every variant (position-wise: the same values)
        mids = torch.cat([mid.flatten(0, 1) for _, _, mid in pending])  # [n, d_model]
        logits = unembed(model, _mlp(model.blocks[last], mids[None]))[0]  # [n, d_vocab]
        at = 0
        for ks, rows, mid in pending:
            n = mid.shape[0] * mid.shape[1]
            out[ks[:, None], rows[None]] = logits[at : at + n].view(*mid.shape[:2], -1)
            at += n
    return out


def _one_key_mid(model, cache, new: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor, q: int,
                 ids: "torch.Tensor | None", new_kv: "tuple[torch.Tensor, torch.Tensor] | None" = None) -> torch.Tensor:
    """``[k, b, d_model]``: the last layer's ``resid_mid`` at query
    ``q`` of ``rows`` when the last layer's ``resid_pre`` at ``pos[k] < q`` is ``new[k]`` [k, b, d_model]: one key and one value
    change, so one attention logit per head moves by ``ds = q . R_p dk / attn_scale``
    (times the log-n scale, if any). The softmax is not taken again: with ``a`` the
    corrupted weight of key ``p`` and ``rest_w``, ``rest_z`` the weights and weighted values
    of every other key, ``z = (rest_z + a e^ds (v_p + dv)) / (rest_w + a e^ds)`` (a rank-one
    update). ``rest_*`` are sums over the other keys (a 0/1 mask, no subtraction: exact in
    float32 too, even when ``a`` is close to 1)."""
    last = model.cfg.n_layers - 1
    block, attn = model.blocks[last], model.blocks[last].attn
    act = lambda kind: cache[utils.get_act_name(kind, last)]  # noqa: E731
    rows = slice(None) if len(rows) == len(act("resid_pre")) else rows  # one query position: no copies
    if new_kv is not None:  # the new key and value are known: [k, b, head, d_head] each
        dk = new_kv[0] - act("k")[rows][:, pos].transpose(0, 1)
        dv = new_kv[1] - act("v")[rows][:, pos].transpose(0, 1)
    else:
        if model.cfg.positional_embedding_type == "shortformer":  # keys read ln1(x) + pos_embed: the difference
            old = act("resid_pre")[rows][:, pos].transpose(0, 1)  # [k, b, d_model]
            d_ln = layer_norm(block.ln1, new) - layer_norm(block.ln1, old)  # [k, b, d_model]
            dk, dv = (torch.einsum("kbm,hmd->kbhd", d_ln, w) for w in (attn.W_K, attn.W_V))  # [k, b, head, d_head]
        else:
            k_new, v_new = projections(attn, layer_norm(block.ln1, new), "KV")  # [k, b, head, d_head]
            dk = k_new - act("k")[rows][:, pos].transpose(0, 1)
            dv = v_new - act("v")[rows][:, pos].transpose(0, 1)
    rotary = model.cfg.positional_embedding_type == "rotary"
    if rotary:
        dk = _rotate(model, attn, dk, pos, None if ids is None else ids[rows])
    query = act("rot_q" if rotary else "q")[rows, q]  # [b, head, d_head]
    ds = torch.einsum("kbhd,bhd->kbh", dk, query) / attn.attn_scale  # [k, b, head]
    if hasattr(attn, "ssmax_scale"):  # comp.model.attention_scale: logits times s_h * log(keys seen)
        ds = ds * attn.ssmax_scale * torch.log(torch.tensor(q + 1.0, dtype=ds.dtype))
    weights = torch.softmax(act("attn_scores")[rows, :, q, : q + 1], dim=-1).transpose(1, 2)  # [b, q + 1, head]
    values = act("v")[rows, : q + 1]  # [b, q + 1, head, d_head]
    others = torch.ones(len(pos), q + 1, dtype=weights.dtype, device=weights.device)  # [k, q + 1]: 0 at key p
    others[torch.arange(len(pos)), pos] = 0
    rest_w = torch.einsum("kj,bjh->kbh", others, weights)  # [k, b, head]
    rest_z = torch.einsum("kj,bjhd->kbhd", others, weights[..., None] * values)  # [k, b, head, d_head]
    a = weights[:, pos].transpose(0, 1)  # [k, b, head]
    top = ds.clamp(min=0)  # scales both sums by e^-top: no overflow
    w_rest, w_key = torch.exp(-top), a * torch.exp(ds - top)
    v_key = values[:, pos].transpose(0, 1) + dv  # [k, b, head, d_head]
    z = (rest_z * w_rest[..., None] + w_key[..., None] * v_key) / (rest_w * w_rest + w_key)[..., None]
    dz = z - act("z")[rows, q]  # [k, b, head, d_head]
    return _resid_mid(model, cache, last)[rows, q] + torch.einsum("kbhd,hdm->kbm", dz, attn.W_O)  # [k, b, d_model]


def plain_attention(model, layer: int = -1) -> bool:
    """Whether ``layer``'s attention (default: the last) is TransformerLens's own ``Attention``
    with rotary or no positions in it and nothing of comp's installed on it (no log-n scale,
    no jitter, no bias): its logits are ``q . k / attn_scale``, causally masked, and nothing else."""
    attn, cfg = model.blocks[layer].attn, model.cfg
    return (type(attn) is Attention and cfg.positional_embedding_type in ("rotary", "standard")
            and not any(name in vars(attn) for name in ("apply_causal_mask", "calculate_attention_scores", "apply_rotary"))
            and not hasattr(attn, "ssmax_scale") and not cfg.use_dynamic_ntk_rope and not cfg.use_qk_norm
            and cfg.n_key_value_heads is None and cfg.attention_dir == "causal")


def _own_position_mid(model, cache, x_q: torch.Tensor, rows: torch.Tensor, q: int) -> torch.Tensor:
    """``[k, b, d_model]``: the last layer's ``resid_mid`` at query ``q`` of ``rows`` when its
    ``resid_pre`` there is ``x_q`` [k, b, d_model] (:func:`plain_attention` only): the query, the own key
    and value are new, the keys and values before ``q`` the corrupted run's."""
    last = model.cfg.n_layers - 1
    block, attn = model.blocks[last], model.blocks[last].attn
    act = lambda kind: cache[utils.get_act_name(kind, last)]  # noqa: E731
    rows = slice(None) if len(rows) == len(act("k")) else rows
    ln = layer_norm(block.ln1, x_q)  # [k, b, d_model]
    query, key, value = projections(attn, ln, "QKV")  # [k, b, head, d_head]
    keys, values = act("k")[rows, :q], act("v")[rows, :q]  # [b, q, head, d_head], keys before rotation
    if model.cfg.positional_embedding_type == "rotary":
        at = torch.full((len(x_q),), q, device=x_q.device)
        query, key = _rotate(model, attn, query, at, None), _rotate(model, attn, key, at, None)
        keys = attn.apply_rotary(keys, 0)  # positions 0..q-1, as the forward rotates cached keys
    past = torch.einsum("kbhd,bjhd->kbhj", query, keys) / attn.attn_scale  # [k, b, head, q]
    own = (query * key).sum(-1, keepdim=True) / attn.attn_scale  # [k, b, head, 1]
    pattern = torch.softmax(torch.cat([past, own], dim=-1), dim=-1)  # [k, b, head, q + 1]
    z = torch.einsum("kbhj,bjhd->kbhd", pattern[..., :q], values) + pattern[..., q:] * value
    return x_q + torch.einsum("kbhd,hdm->kbm", z, attn.W_O) + attn.b_O  # [k, b, d_model]


def _rotate(model, attn, x: torch.Tensor, pos: torch.Tensor, ids: "torch.Tensor | None") -> torch.Tensor:
    """``x`` [k, b, head, d_head] rotated as keys at positions ``pos`` [k] (ids [b, pos] if the
    model reads ids) by the attention's own ``apply_rotary``."""
    if ids is None and type(attn).apply_rotary is AbstractAttention.apply_rotary and not model.cfg.use_dynamic_ntk_rope:
        # TransformerLens's rotation at each key's own position, every variant at once
        rd, at = model.cfg.rotary_dim, pos.to(attn.rotary_cos.device)
        if int(at.max()) >= attn.rotary_cos.shape[0]:
            attn.apply_rotary(x[:1, :1], int(at.max()))  # the table grows as a forward would grow it
        cos, sin = attn.rotary_cos[at][:, None, None], attn.rotary_sin[at][:, None, None]  # [k, 1, 1, rotary_dim]
        x_rot = x[..., :rd]
        return torch.cat([x_rot * cos + attn.rotate_every_two(x_rot) * sin, x[..., rd:]], dim=-1)
    out = torch.empty_like(x)
    state = getattr(model, "positions", None)
    for p in pos.unique().tolist():
        sel = (pos == p).nonzero()[:, 0]
        if state is not None:
            state.ids = None if ids is None else ids.repeat(len(sel), 1)
        try:
            out[sel] = attn.apply_rotary(x[sel].flatten(0, 1)[:, None], p)[:, 0].view(len(sel), *x.shape[1:])
        finally:
            if state is not None:
                state.ids = None
    return out


def unembed(model, resid_post: torch.Tensor) -> torch.Tensor:
    """``[k, b, d_vocab]`` logits of the final residual stream [k, b, d_model]: what the
    forward ends with (the final norm, the unembedding; :func:`supported` rules out a soft cap)."""
    if model.cfg.normalization_type is not None:
        resid_post = layer_norm(model.ln_final, resid_post)
    return model.unembed(resid_post)


def _ids(ids: "torch.Tensor | None", rows: torch.Tensor, q: int) -> "torch.Tensor | None":
    return None if ids is None else ids[rows, : q + 1]


def _pos_embed(model, cache, rows: torch.Tensor, q: int) -> "torch.Tensor | None":
    if model.cfg.positional_embedding_type != "shortformer":
        return None
    return cache["hook_pos_embed"][rows, q : q + 1]  # [b, 1, d_model]


def _last_layer(model, x_q: torch.Tensor, k_past: torch.Tensor, v_past: torch.Tensor,
                ids: "torch.Tensor | None", pos_embed: "torch.Tensor | None") -> torch.Tensor:
    """``[k, b, d_vocab]``: the last layer at the query position only, from its ``resid_pre``
    ``x_q`` [k, b, d_model] and the keys and values before it [k, b, q, head, d_head]."""
    k, b, q = k_past.shape[:3]
    entry = TransformerLensKeyValueCacheEntry(k_past.flatten(0, 1), v_past.flatten(0, 1), frozen=True)
    mask = torch.ones(k * b, q + 1, dtype=torch.int, device=x_q.device)
    kv = TransformerLensKeyValueCache([entry] * model.cfg.n_layers, mask[:, :q], frozen=True)
    with pinned_positions(model, None if ids is None else ids.repeat(k, 1)):
        logits = model(x_q.flatten(0, 1)[:, None], start_at_layer=model.cfg.n_layers - 1, past_kv_cache=kv,
                       attention_mask=mask, shortformer_pos_embed=None if pos_embed is None else pos_embed.repeat(k, 1, 1))
    return logits.view(k, b, -1)
