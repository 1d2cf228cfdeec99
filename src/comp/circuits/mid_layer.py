"""Node ablations that start after an attention layer: that attention runs once, not once per copy.

Node-level discovery (:class:`comp.circuits.circuit_eval.NodeEvaluator`) runs ``K``
copies of a batch, each with its own set of ablated nodes. Layers before the first one
whose edits differ between copies (the *fork*) run once already
(:func:`comp.circuits.edge_patching.fork_layer`). When the edits at the fork touch only
head outputs (``hook_z``) and the MLP's output (``hook_mlp_out``), the fork's attention
itself is also the same in every copy: its inputs (``resid_pre``) are shared. So it runs
once on ``B`` rows, and each copy starts from its output::

    z = where(mask_z, ablated_z, z)                  # [k, B, pos, head, d_head]
    resid_mid = resid_pre + z @ W_O + b_O            # [k, B, pos, d_model]
    mlp_out = where(mask_mlp, ablated_mlp, MLP(ln2(resid_mid)))
    resid_post = resid_mid + mlp_out                 # then the later layers, edited per copy

The same values as running every copy through the whole fork layer (tests: every encoding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformer_lens import utils

from comp.circuits.interventions import _edit_hook
from comp.model import pinned_positions

Masks = dict[str, torch.Tensor]  # hook -> [K, pos, (head,) 1] bool


def _layer(hook: str) -> int:
    return int(hook.split(".")[1])


def start_layer(model, masks: Masks) -> "int | None":
    """The layer copies can start after the attention of: the first whose edits differ
    between copies, if those come after its attention (head or MLP outputs; a shared edit
    of its ``resid_pre`` is applied once) and the block is a plain pre-norm
    attention-then-MLP block. None otherwise."""
    cfg = model.cfg
    if cfg.parallel_attn_mlp or cfg.use_normalization_before_and_after or cfg.positional_embedding_type == "shortformer":
        return None
    varying = {h for h, m in masks.items() if not bool((m == m[:1]).all())}
    if not varying:
        return None
    fork = min(_layer(h) for h in varying)
    allowed = {utils.get_act_name("z", fork), utils.get_act_name("mlp_out", fork)}
    return fork if all(h in allowed for h in varying if _layer(h) == fork) else None


@torch.no_grad()
def run_after_attention(model, tokens: torch.Tensor, masks: Masks, sources: dict[str, torch.Tensor], fork: int,
                        reduce: Callable[[torch.Tensor], torch.Tensor], max_rows: int,
                        read: "torch.Tensor | None" = None) -> torch.Tensor:
    """``[K, ...]``: each copy's logits ``[k, B, pos, d_vocab]`` reduced, copies starting
    after the attention of layer ``fork`` (module docstring). Edits before ``fork`` and of its
    ``resid_pre`` are the same in every copy (:func:`start_layer`): they are taken from copy 0.
    ``read`` [pos] bool: the positions whose logits ``reduce`` reads; when ``fork`` is the last
    layer (every step after its attention is position-wise) only those run, the other
    logits are zero."""
    z_name, mlp_name = utils.get_act_name("z", fork), utils.get_act_name("mlp_out", fork)
    pre_name = utils.get_act_name("resid_pre", fork)
    ids = model.position_ids(tokens) if getattr(getattr(model, "encoding", None), "uses_ids", False) else None
    early = [(h, _edit_hook(m[:1], sources[h])) for h, m in masks.items() if _layer(h) < fork or h == pre_name]
    with pinned_positions(model, ids), model.hooks(fwd_hooks=early):
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in (pre_name, z_name), stop_at_layer=fork + 1)
    resid_pre, z_base = cache[pre_name], cache[z_name]  # [B, pos, d_model], [B, pos, head, d_head]
    block, (b, n_pos) = model.blocks[fork], tokens.shape
    at = None
    if read is not None and fork == model.cfg.n_layers - 1:  # position-wise from here: only what is read
        at = read.nonzero()[:, 0].to(tokens.device)
        resid_pre, z_base = resid_pre[:, at], z_base[:, at]
        masks = {h: m[:, at] for h, m in masks.items()}
        sources = {h: v[:, at] if _layer(h) == fork else v for h, v in sources.items()}
    k_total = next(iter(masks.values())).shape[0]
    per = max(1, max_rows // b)
    outs = []
    for lo in range(0, k_total, per):
        chunk = {h: m[lo : lo + per].to(tokens.device) for h, m in masks.items()}
        k = next(iter(chunk.values())).shape[0]
        z = z_base[None].expand(k, *z_base.shape)
        if z_name in chunk:
            z = torch.where(chunk[z_name][:, None], sources[z_name][None], z)  # [k, B, pos, head, d_head]
        resid_mid = resid_pre + torch.einsum("kbphd,hdm->kbpm", z, block.attn.W_O) + block.attn.b_O  # [k, B, pos, d_model]
        resid_post = resid_mid
        if not model.cfg.attn_only:
            mlp_out = block.apply_mlp(block.ln2(resid_mid))
            if mlp_name in chunk:
                mlp_out = torch.where(chunk[mlp_name][:, None], sources[mlp_name][None], mlp_out)
            resid_post = resid_mid + mlp_out
        later = [(h, _edit_hook(m, sources[h])) for h, m in chunk.items() if _layer(h) > fork]
        with pinned_positions(model, None if ids is None else ids.repeat(k, 1)):
            logits = model.run_with_hooks(resid_post.flatten(0, 1), start_at_layer=fork + 1, fwd_hooks=later)
        logits = logits.view(k, b, *logits.shape[1:])  # [k, B, pos, d_vocab]
        if at is not None:
            logits = logits.new_zeros(k, b, n_pos, logits.shape[-1]).index_copy_(2, at, logits)
        outs.append(reduce(logits))
    return torch.cat(outs)
