"""Whole patching sweeps of plain 2-layer rotary models, written out in a few hundred operators.

:func:`comp.circuits.patching.generic_activation_patch` answers every model through pieces
that each take any architecture (the shared prefix, the written-out corrupted run, the last
layer's closed forms): about 780 torch operators per ``mlp_out`` sweep, most of them views,
slices and small copies whose cost, not the arithmetic, bounds the sweep at a few dozen
pairs. For the common block (TransformerLens's own pre-norm ``Attention`` with rotary
positions in both layers, nothing of comp's on it, position ids unused: the blocks
:func:`comp.circuits.plain_run.applies` takes) this module does the same sweep directly,
every site of a layer at once, with per-model tables (fused projections, rotary cos/sin
extended to ``d_head``, ``rotate_every_two`` as a signed permutation matrix, the causal
mask, a buffer for the MLP's hidden layer: no fresh pages per sweep) built once:

1. the corrupted run from the first changed position ``s`` to the last query (queries of the
   last layer at each row's query ``q_b`` only), on the clean run's keys and values before
   ``s``; layer 0 projects and rotates only the changed tokens (its input is the token
   embedding: elsewhere the clean run's rotated queries and keys, :func:`clean_hooks`);
2. every patch whose effect reaches the last layer as a new ``resid_pre`` at one position
   ``p`` (``hook_z`` / ``hook_mlp_out`` of layer 0, ``hook_resid_pre`` of layer 1) becomes one
   variant row per pair: its key and value at ``p`` (and its query if ``p = q_b``) replace the
   corrupted ones and layer 1 runs at ``q_b`` with a fresh softmax, ``[variants, pairs]`` at once;
   rows whose query is before ``p`` keep the corrupted logits;
3. patches of layer 1's ``hook_z`` / ``hook_mlp_out`` change ``resid_mid`` / ``resid_post`` at
   ``q_b`` only: the MLP and the unembedding run on those rows;
4. ``hook_resid_pre`` of layer 0 differs at one position only (a flipped bit): patching it
   restores the clean run (its logits at the queries). More changed positions: the generic path.

The values equal TransformerLens's one-forward-per-patch loop and the generic path's
(tests: the sweeps to 1e-5, float64 and trained float32 models; the corrupted run equal to
the forward to 1e-10 in float64); anything else (other encodings, comp's attention
scales, other depths, models reading position ids) returns None and takes the generic path.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from transformer_lens import utils

from comp.circuits import last_layer, plain_run
from comp.circuits.arithmetic import layer_norm
from comp.circuits.arithmetic import mlp_out as block_mlp

KINDS = ("resid_pre", "z", "mlp_out")
SCRATCH = 1 << 20  # elements of the largest MLP hidden layer kept between sweeps (8 MB in float64)
WEIGHTS = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "rotary_cos", "rotary_sin")  # what Tables copies
PASS_ROWS, PASS_VARIANTS = 600, 8  # a pass of variants: this many rows or this many variants, whichever is more


@dataclass
class Tables:
    """One attention layer's weights in few-operator form (copies of the model's)."""

    w_qkv: torch.Tensor  # [3 * head * d_head, d_model]: W_Q, W_K, W_V in F.linear's layout
    b_qkv: torch.Tensor  # [3 * head * d_head]
    w_o: torch.Tensor  # [d_model, head * d_head]: W_O in F.linear's layout
    cos: torch.Tensor  # [n_rot, d_head]: the rotary cos, 1 past rotary_dim
    sin: torch.Tensor  # [n_rot, d_head]: the rotary sin, 0 past rotary_dim
    flip: torch.Tensor  # [d_head, d_head]: rotate_every_two as a signed permutation matrix (0 past rotary_dim)
    causal: torch.Tensor  # [n_rot, n_rot] bool: key after query
    hidden: torch.Tensor  # [rows * d_mlp] the MLP's hidden layer, kept between sweeps (at most SCRATCH elements)

    def rotate(self, x: torch.Tensor, at: "slice | torch.Tensor") -> torch.Tensor:
        """``x`` [..., pos, d_head] rotated at positions ``at``: ``apply_rotary``'s products, bit for bit
        (``x @ flip`` sums one signed element and zeros: exact, and one product instead of an index)."""
        return x * self.cos[at] + (x @ self.flip) * self.sin[at]


_name = lru_cache(maxsize=None)(utils.get_act_name)  # hook names: TransformerLens parses them by regex each call
_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (versions of what the tables copy, tables)


def applies(model, activation_name: str) -> bool:
    """Whether this module computes the sweep of ``activation_name`` (module docstring)."""
    cfg = model.cfg
    return (cfg.n_layers == 2 and activation_name in KINDS and not (activation_name == "mlp_out" and cfg.attn_only)
            and getattr(cfg, "attn_types", None) is None and plain_run.applies(model)
            and last_layer.supported(model, activation_name, 1))


def clean_hooks(model) -> set[str]:
    """The clean cache's hooks this module reads beyond the generic path's (``patch_sweep``
    caches them): layer 0's rotated queries and keys, layer 1's rotated keys. Without them
    it projects and rotates those itself."""
    return {_name("rot_q", 0), _name("rot_k", 0), _name("rot_k", 1)} if applies(model, "z") else set()


@torch.no_grad()
def tables(model) -> list[Tables]:
    """Each layer's :class:`Tables`, rebuilt when a tensor they copy has changed since (new
    storage, an in-place update such as an optimizer step, another dtype or size)."""
    read = [getattr(b.attn, name) for b in model.blocks for name in WEIGHTS]  # what the tables copy
    key = tuple((t.data_ptr(), t._version, t.dtype, t.shape) for t in read)
    held = _TABLES.get(model)
    if held is None or held[0] != key:
        held = (key, [_tables(block.attn) for block in model.blocks])
        _TABLES[model] = held
    return held[1]


def _tables(attn) -> Tables:
    heads, d_model, d_head = attn.W_Q.shape
    rd, (n, _) = attn.cfg.rotary_dim, attn.rotary_cos.shape
    w = torch.cat([attn.W_Q, attn.W_K, attn.W_V])  # [3 * head, d_model, d_head]
    flip = torch.zeros(d_head, d_head, dtype=w.dtype, device=w.device)
    flip[:rd, :rd] = attn.rotate_every_two(torch.eye(rd, dtype=w.dtype, device=w.device))  # row i: e_i rotated
    return Tables(
        w_qkv=w.transpose(1, 2).reshape(-1, d_model).contiguous(),
        b_qkv=torch.cat([attn.b_Q, attn.b_K, attn.b_V]).reshape(-1),
        w_o=attn.W_O.reshape(heads * d_head, -1).T.contiguous(),
        cos=torch.cat([attn.rotary_cos, attn.rotary_cos.new_ones(n, d_head - rd)], -1),
        sin=torch.cat([attn.rotary_sin, attn.rotary_sin.new_zeros(n, d_head - rd)], -1),
        flip=flip,
        causal=torch.ones(n, n, dtype=torch.bool, device=w.device).triu(1),
        hidden=w.new_empty(0),
    )


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of a temporary ``scores``, in place, by exp (torch's float64 softmax is slower here)."""
    e = scores.sub_(scores.amax(-1, keepdim=True)).exp_()  # in place: ``scores`` is a temporary
    return e.div_(e.sum(-1, keepdim=True))


@dataclass
class Run:
    """The corrupted run from position ``s`` to the last query (module docstring, step 1)."""

    s: int
    qpos: torch.Tensor  # [B] each row's query
    resid_mid0: torch.Tensor  # [B, n, d_model] layer 0, positions s..
    z0: torch.Tensor  # [B, n, head, d_head]
    mlp0: "torch.Tensor | None"  # [B, n, d_model]
    resid1: torch.Tensor  # [B, n, d_model]: resid_pre of layer 1
    rq1: torch.Tensor  # [B, head, d_head]: layer 1's rotated query at each row's query
    rk1: torch.Tensor  # [B, head, end, d_head]: layer 1's rotated keys
    v1: torch.Tensor  # [B, head, end, d_head]
    hidden: torch.Tensor  # [B, 1, 1, end] bool: keys after each row's query
    x_q: torch.Tensor  # [B, d_model]: resid_pre of layer 1 at the query
    z1: torch.Tensor  # [B, head, d_head]
    resid_mid1: torch.Tensor  # [B, d_model]
    logits: torch.Tensor  # [B, d_vocab] at the queries


def _corrupted(model, tabs: list[Tables], clean_cache, emb: torch.Tensor, changed: torch.Tensor, s: int,
               qpos: torch.Tensor) -> Run:
    """Step 1: ``emb`` [B, end, d_model] the corrupted tokens' embeddings, ``changed`` [B, end]
    where they differ from the clean ones (none before ``s``)."""
    (b, end, _), n = emb.shape, emb.shape[1] - s
    blk0, blk1, t0, t1 = model.blocks[0], model.blocks[1], tabs[0], tabs[1]
    heads, d_head = blk0.attn.W_Q.shape[0], blk0.attn.W_Q.shape[2]
    hd = heads * d_head
    clean = lambda kind, layer: clean_cache[_name(kind, layer)].to(emb.device)  # noqa: E731
    if all(_name(kind, 0) in clean_cache for kind in ("rot_q", "rot_k", "v")):  # the clean run's, new where the token changed
        rq, rk, v = clean("rot_q", 0)[:, s:end].clone(), clean("rot_k", 0)[:, :end].clone(), clean("v", 0)[:, :end].clone()
        r, p = changed.nonzero(as_tuple=True)  # [m]
        q, k, v_new = F.linear(layer_norm(blk0.ln1, emb[r, p]), t0.w_qkv, t0.b_qkv).view(-1, 3, heads, d_head).unbind(1)
        rq[r, p - s], rk[r, p], v[r, p] = t0.rotate(q, p[:, None]), t0.rotate(k, p[:, None]), v_new  # [m, head, d_head]
        rq, rk = rq.transpose(1, 2), rk.transpose(1, 2)  # [B, head, pos, d_head]
    else:
        q, k, v = F.linear(layer_norm(blk0.ln1, emb[:, s:]), t0.w_qkv, t0.b_qkv).view(b, n, 3, heads, d_head).unbind(2)
        k, v = torch.cat([clean("k", 0)[:, :s], k], 1), torch.cat([clean("v", 0)[:, :s], v], 1)
        rq, rk = t0.rotate(q.transpose(1, 2), slice(s, end)), t0.rotate(k.transpose(1, 2), slice(0, end))
    attn = blk0.attn  # layer 0, queries s.., keys 0..: [B, head, n, end]
    scores = rq @ rk.transpose(-1, -2)
    pattern = _softmax(scores.div_(attn.attn_scale).masked_fill_(t0.causal[s:end, :end], float("-inf")))
    z0 = (pattern @ v.transpose(1, 2)).transpose(1, 2)  # [B, n, head, d_head]
    resid_mid0 = emb[:, s:] + F.linear(z0.reshape(b, n, hd), t0.w_o, attn.b_O)  # [B, n, d_model]
    mlp0 = None if model.cfg.attn_only else _mlp(model, t0, 0, resid_mid0)
    resid1 = resid_mid0 if mlp0 is None else resid_mid0 + mlp0
    # layer 1: keys and values at every position, the query at each row's query only
    h1 = layer_norm(blk1.ln1, resid1)  # [B, n, d_model]
    k1, v1 = F.linear(h1, t1.w_qkv[hd:], t1.b_qkv[hd:]).view(b, n, 2, heads, d_head).unbind(2)
    known = (clean("rot_k", 1)[:, :s].transpose(1, 2) if _name("rot_k", 1) in clean_cache
             else t1.rotate(clean("k", 1)[:, :s].transpose(1, 2), slice(0, s)))  # [B, head, s, d_head], rotated
    rk1 = torch.cat([known, t1.rotate(k1.transpose(1, 2), slice(s, end))], 2)  # [B, head, end, d_head]
    v1 = torch.cat([clean("v", 1)[:, :s], v1], 1).transpose(1, 2)
    rows, at = torch.arange(b, device=emb.device), qpos - s
    rq1 = t1.rotate(F.linear(h1[rows, at], t1.w_qkv[:hd], t1.b_qkv[:hd]).view(b, heads, d_head), qpos[:, None])
    hidden = (torch.arange(end, device=emb.device) > qpos[:, None])[:, None, None]  # [B, 1, 1, end]
    scores = (rq1[:, :, None] @ rk1.transpose(-1, -2)).div_(blk1.attn.attn_scale)  # [B, head, 1, end]
    z1 = (_softmax(scores.masked_fill_(hidden, float("-inf"))) @ v1)[:, :, 0]  # [B, head, d_head]
    x_q = resid1[rows, at]  # [B, d_model]
    resid_mid1 = x_q + F.linear(z1.reshape(b, hd), t1.w_o, blk1.attn.b_O)
    logits = last_layer.unembed(model, _post(model, t1, 1, resid_mid1))  # [B, d_vocab]
    return Run(s, qpos, resid_mid0, z0, mlp0, resid1, rq1, rk1, v1, hidden, x_q, z1, resid_mid1, logits)


def _mlp(model, t: Tables, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
    """``hook_mlp_out`` of ``layer`` from its ``resid_mid`` [..., d_model], the hidden layer in ``t.hidden``."""
    size = resid_mid.numel() // resid_mid.shape[-1] * model.cfg.d_mlp
    if t.hidden.numel() < size <= SCRATCH:
        t.hidden = resid_mid.new_empty(size)
    return block_mlp(model.blocks[layer], resid_mid, t.hidden)


def _post(model, t: Tables, layer: int, resid_mid: torch.Tensor) -> torch.Tensor:
    """``resid_post`` of ``layer`` from its ``resid_mid`` [..., d_model]."""
    return resid_mid if model.cfg.attn_only else resid_mid + _mlp(model, t, layer, resid_mid)


def _before(model, t1: Tables, run: Run, resid: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """Step 2: ``[V, B, d_vocab]`` logits at the queries when layer 1's ``resid_pre`` at
    position ``pv[v]`` is ``resid[v]`` [V, B, d_model] (the corrupted run's elsewhere)."""
    (nv, b, _), attn = resid.shape, model.blocks[1].attn
    heads, d_head = attn.W_Q.shape[0], attn.W_Q.shape[2]
    qkv = F.linear(layer_norm(model.blocks[1].ln1, resid), t1.w_qkv, t1.b_qkv).view(nv, b, 3, heads, d_head)
    q, k, v = qkv.permute(2, 1, 3, 0, 4).unbind(0)  # [B, head, V, d_head]
    own = pv[None] == run.qpos[:, None]  # [B, V]: the variant's position is the row's query
    q = torch.where(own[:, None, :, None], t1.rotate(q, pv), run.rq1[:, :, None])  # [B, head, V, d_head]
    at_p = pv[:, None] == torch.arange(run.rk1.shape[2], device=pv.device)  # [V, end]: the changed key
    own_key = (q * t1.rotate(k, pv)).sum(-1, keepdim=True)  # [B, head, V, 1]
    scores = torch.where(at_p, own_key, q @ run.rk1.transpose(-1, -2)).div_(attn.attn_scale)  # [B, head, V, end]
    pattern = _softmax(scores.masked_fill_(run.hidden, float("-inf")))
    a = pattern.gather(-1, pv.view(1, 1, nv, 1).expand(b, heads, nv, 1))  # [B, head, V, 1]
    z = pattern.masked_fill(at_p, 0) @ run.v1 + a * v  # [B, head, V, d_head]
    x_q = torch.where(own.T[..., None], resid, run.x_q)  # [V, B, d_model]
    mid = x_q + F.linear(z.permute(2, 0, 1, 3).reshape(nv, b, heads * d_head), t1.w_o, attn.b_O)
    logits = last_layer.unembed(model, _post(model, t1, 1, mid))  # [V, B, d_vocab]
    return torch.where((pv[:, None] > run.qpos[None])[..., None], run.logits, logits)  # after the query: unchanged


def _metric_in_chunks(metric, n: int, b: int, max_rows: int, logits_of: Callable[[slice], torch.Tensor]) -> torch.Tensor:
    """``[n]``: the metric of ``logits_of(chunk)`` [k, B, d_vocab] over chunks of at most ``max_rows`` rows."""
    per = max(1, min(max_rows // b, max(PASS_ROWS // b, PASS_VARIANTS)))  # few pairs: temporaries below a MB
    return torch.cat([metric.normalise(metric.raw_at_query(logits_of(slice(lo, lo + per)))) for lo in range(0, n, per)])


@torch.no_grad()
def sweep(model, tokens: torch.Tensor, clean_cache, metric, activation_name: str, max_rows: int) -> "torch.Tensor | None":
    """``[2, pos(, head)]``: :func:`comp.circuits.patching.generic_activation_patch`'s answer for
    ``activation_name`` in :data:`KINDS`, or None where this module does not apply."""
    kinds = {"resid_pre": ("resid_pre", "resid_post"), "z": ("z",), "mlp_out": ("mlp_out",)}
    need = ["hook_embed", *(_name(k, layer) for k in ("k", "v") for layer in (0, 1))]
    need += [_name(k, layer) for k in kinds.get(activation_name, ()) for layer in (0, 1)]
    if not applies(model, activation_name) or not all(name in clean_cache for name in need):
        return None
    end, dev = metric.last_pos + 1, tokens.device
    tabs = tables(model)
    if end > tabs[0].cos.shape[0] or clean_cache["hook_embed"].shape[:2] != tokens.shape:
        return None
    qpos = metric.query.to(dev)  # [B]
    emb = model.embed(tokens[:, :end])  # [B, end, d_model]
    changed = (emb != clean_cache["hook_embed"][:, :end].to(dev)).any(-1)  # [B, end]
    cols = changed.any(0)  # [end]
    s = int(cols.int().argmax())
    if not bool(cols[s]) or s > int(qpos.min()) or (activation_name == "resid_pre" and int(cols.sum()) != 1):
        return None
    run = _corrupted(model, tabs, clean_cache, emb, changed, s, qpos)
    b, n, t1 = len(tokens), end - s, tabs[1]
    rows = torch.arange(b, device=dev)
    baseline = metric.normalise(metric.raw_at_query(run.logits)).item()
    clean = lambda layer: clean_cache[_name(activation_name, layer)].to(dev)  # noqa: E731
    heads = model.cfg.n_heads
    out = torch.full([2, tokens.shape[1], *((heads,) if activation_name == "z" else ())], baseline)
    positions = torch.arange(s, end, device=dev)  # [n]
    if activation_name == "resid_pre":  # layer 0: the one changed position restores the clean run
        final = clean_cache[_name("resid_post", 1)].to(dev)[rows, qpos]  # [B, d_model]
        out[0, s] = metric.normalise(metric.raw_at_query(last_layer.unembed(model, final[None])[0])).item()
        new = clean(1)[:, s:end]  # [B, n, d_model]
        live = (new != run.resid1).any(-1).any(0)  # [n]
        new = new.transpose(0, 1)  # [n, B, d_model]
        values = _metric_in_chunks(metric, n, b, max_rows, lambda c: _before(model, t1, run, new[c], positions[c]))
        out[1, s:end] = torch.where(live, values, baseline).cpu()
        return out
    queries = torch.unique(qpos)  # [U]: the last layer's sites
    hit = (queries[:, None] == qpos[None])[..., None]  # [U, B, 1]
    if activation_name == "mlp_out":
        live = (clean(0)[:, s:end] != run.mlp0).any(-1).any(0)  # [n]
        new = (run.resid_mid0 + clean(0)[:, s:end]).transpose(0, 1)  # [n, B, d_model]
        values = _metric_in_chunks(metric, n, b, max_rows, lambda c: _before(model, t1, run, new[c], positions[c]))
        out[0, s:end] = torch.where(live, values, baseline).cpu()
        patched = last_layer.unembed(model, run.resid_mid1 + clean(1)[rows, qpos])  # [B, d_vocab]
        out[1, queries.cpu()] = metric.normalise(metric.raw_at_query(torch.where(hit, patched, run.logits))).cpu().to(out.dtype)
        return out
    # head outputs: layer 0's (position, head) sites as variants of layer 1's resid_pre
    w_o0, w_o1 = model.blocks[0].attn.W_O, model.blocks[1].attn.W_O  # [head, d_head, d_model]
    dz = clean(0)[:, s:end] - run.z0  # [B, n, head, d_head]
    live = (dz != 0).any(-1).any(0)  # [n, head]
    mid = run.resid_mid0.transpose(0, 1)[:, None] + torch.einsum("bphd,hdm->phbm", dz, w_o0)  # [n, head, B, d_model]
    mid, pv = mid.flatten(0, 1), positions.repeat_interleave(heads)  # [n * head, B, d_model], [n * head]
    values = _metric_in_chunks(metric, n * heads, b, max_rows,
                               lambda c: _before(model, t1, run, _post(model, tabs[0], 0, mid[c]), pv[c]))
    out[0, s:end] = torch.where(live, values.view(n, heads), baseline).cpu()
    dz1 = clean(1)[rows, qpos] - run.z1  # [B, head, d_head]
    mid1 = run.resid_mid1 + torch.einsum("bhd,hdm->hbm", dz1, w_o1)  # [head, B, d_model]
    patched = last_layer.unembed(model, _post(model, t1, 1, mid1))  # [head, B, d_vocab]
    logits = torch.where(hit[:, None], patched[None], run.logits)  # [U, head, B, d_vocab]
    out[1, queries.cpu()] = metric.normalise(metric.raw_at_query(logits)).cpu().to(out.dtype)
    return out
