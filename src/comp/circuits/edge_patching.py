"""Edge patching: ``K`` copies of a batch, each with its own removed edges, in one forward pass.

Every downstream input is a sum of upstream outputs (and constant biases): TransformerLens
exposes each head's own ``q``, ``k`` and ``v`` input (``use_split_qkv_input``:
``blocks.{l}.hook_{q,k,v}_input``, ``[batch, pos, head, d_model]``, before ``ln1``), each
MLP's input (``use_hook_mlp_in``: ``blocks.{l}.hook_mlp_in``, before ``ln2``) and the
logits' input (the last ``hook_resid_post``). Removing the edge ``s -> r`` is path
patching: ``r``'s input becomes::

    input_r - (out_s - ablated_s)        # at the positions of the edge's class

where ``out_s`` is the sender's output in the same (edited) copy and ``ablated_s`` its
output on the reference set (mean or resample). Senders are read as they run
(``blocks.0.hook_resid_pre``: embed; ``hook_z @ W_O``: each head's result;
``hook_mlp_out``: each MLP), stacked ``[k * B, pos, sender, d_model]``; a receiver hook
subtracts ``einsum(mask, diff)`` with a float ``mask[k, sender, pos(, head)]`` per copy
(1: removed; between 0 and 1: partly, for integrated gradients).

Senders upstream of a receiver are exactly those run before it (:mod:`comp.circuits.graph`),
so a receiver's mask has one row per sender seen so far.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from transformer_lens import utils

from comp.circuits.graph import Graph

Masks = dict[str, torch.Tensor]  # receiver hook -> [K, senders, pos(, head)] float


def sender_hooks(n_layers: int) -> list[str]:
    """Hooks the senders are read from, in forward order."""
    out = ["blocks.0.hook_resid_pre"]
    for layer in range(n_layers):
        out += [utils.get_act_name("z", layer), utils.get_act_name("mlp_out", layer)]
    return out


def receiver_hook(receiver: str, n_layers: int) -> str:
    """The hook holding a receiver's input (``L1H0.q`` -> ``blocks.1.hook_q_input``)."""
    if receiver == "logits":
        return f"blocks.{n_layers - 1}.hook_resid_post"
    if receiver.startswith("MLP"):
        return f"blocks.{receiver[3:]}.hook_mlp_in"
    name, x = receiver.split(".")
    return f"blocks.{name[1 : name.index('H')]}.hook_{x}_input"


def receiver_hooks(graph: Graph) -> list[str]:
    return list(dict.fromkeys(receiver_hook(r, graph.n_layers) for r in graph.receivers))


def _sender_out(model, name: str, act: torch.Tensor) -> torch.Tensor:
    """``[rows, pos, n, d_model]``: the outputs of the senders read at hook ``name``."""
    if name.endswith("hook_z"):
        w_o = model.blocks[int(name.split(".")[1])].attn.W_O  # [head, d_head, d_model]
        return torch.einsum("bphd,hdm->bphm", act, w_o)
    return act[:, :, None]


@torch.no_grad()
def ablated_outputs(model, graph: Graph, reference: torch.Tensor, replace: Callable) -> torch.Tensor:
    """``[B, pos, sender, d_model]``: every sender's output on the reference set, ablated
    by ``replace`` (``mean``: the mean over rows; ``resample``: row for row)."""
    hooks = sender_hooks(graph.n_layers) if graph.has_mlps else [h for h in sender_hooks(graph.n_layers) if "mlp" not in h]
    _, cache = model.run_with_cache(reference, names_filter=lambda n: n in hooks)
    return replace(torch.cat([_sender_out(model, h, cache[h]) for h in hooks], dim=2))


@contextlib.contextmanager
def split_inputs(model) -> Iterator[None]:
    """Turn on TransformerLens's per-head q/k/v inputs and ``hook_mlp_in`` for a while."""
    old = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
    model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = True, True
    try:
        yield
    finally:
        model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = old


def edge_hooks(model, masks: Masks, ablated: torch.Tensor, k: int, store: "dict | None" = None,
               diffs: "list[torch.Tensor] | None" = None) -> list:
    """Forward hooks that read every sender and edit every receiver of ``masks``
    (``ablated``: ``[B, pos, sender, d_model]``). With ``store``, each edited receiver
    input is kept there (``retain_grad``) for attribution. ``diffs`` collects each sender's
    ``[k, pos, n, B, d_model]`` difference from its ablated output; given already filled (a
    run that starts at a later layer), those senders count as read."""
    diffs = [] if diffs is None else diffs
    seen = [sum(d.shape[2] for d in diffs)]
    stacked: dict[int, torch.Tensor] = {}  # senders so far -> [k, pos, S, B * d_model]

    def read(act: torch.Tensor, hook) -> None:
        if store is not None and not seen[0] and not act.requires_grad:
            act.requires_grad_(True)  # attribution: gradients reach every receiver
        out = _sender_out(model, hook.name, act)  # [k * B, pos, n, d_model]
        n = out.shape[2]
        ref = ablated[None, :, : out.shape[1], seen[0] : seen[0] + n]  # [1, B, pos, n, d_model]
        diffs.append((out.view(k, -1, *out.shape[1:]) - ref).permute(0, 2, 3, 1, 4))
        seen[0] += n

    def edit(act: torch.Tensor, hook) -> torch.Tensor:
        m = masks.get(hook.name)
        if m is not None and (store is not None or bool(m.any())):
            if len(diffs) not in stacked:
                d = torch.cat(diffs, dim=2)  # [k, pos, S, B, d_model]
                stacked[len(diffs)] = d.flatten(3)
            d = stacked[len(diffs)]  # [k, pos, S, B * d_model]
            view = act.view(k, -1, *act.shape[1:])  # [k, B, pos, (head,) d_model]
            if act.dim() == 4:  # m: [k, S, pos, head]
                delta = torch.matmul(m.permute(0, 2, 3, 1).to(d.dtype), d)  # [k, pos, head, B * d_model]
                delta = delta.view(*delta.shape[:3], view.shape[1], -1).permute(0, 3, 1, 2, 4)  # [k, B, pos, head, d]
            else:  # m: [k, S, pos]
                delta = torch.matmul(m.permute(0, 2, 1)[:, :, None].to(d.dtype), d)[:, :, 0]  # [k, pos, B * d_model]
                delta = delta.view(*delta.shape[:2], view.shape[1], -1).permute(0, 2, 1, 3)  # [k, B, pos, d]
            act = (view - delta).reshape(act.shape)
        if store is not None:
            act.retain_grad()
            store[hook.name] = act
        return act

    hooks = [(h, read) for h in sender_hooks(model.cfg.n_layers) if model.cfg.attn_only is False or "mlp" not in h]
    receivers = receiver_hooks(Graph.of(model))
    return hooks + [(h, edit) for h in receivers if h in masks or store is not None]


def _layer(hook: str) -> int:
    return int(hook.split(".")[1])


def fork_layer(model, masks: Masks) -> int:
    """The first layer whose receivers are edited differently in different copies: every
    layer before it is the same in all copies and runs once. 0 for encodings whose
    positions a run from a later layer would not see (position ids, shortformer)."""
    if getattr(getattr(model, "encoding", None), "uses_ids", False) or model.cfg.positional_embedding_type == "shortformer":
        return 0
    varying = [_layer(h) for h, m in masks.items() if not bool((m == m[:1]).all())]
    return min(varying, default=model.cfg.n_layers - 1)


def run_edges(model, tokens: torch.Tensor, masks: Masks, ablated: torch.Tensor,
              reduce: Callable[[torch.Tensor], torch.Tensor], max_rows: int = 4096) -> torch.Tensor:
    """Run ``K`` copies of ``tokens`` [B, pos], copy ``k`` with the edges of ``masks[...][k]``
    removed, and reduce each copy's logits ``[k, B, pos, d_vocab]`` to ``[k, ...]``.

    The layers before :func:`fork_layer` run once on ``B`` rows (their edits are the same in
    every copy); the copies start from its residual stream (``start_at_layer``)."""
    k_total, b = next(iter(masks.values())).shape[0], tokens.shape[0]
    per_chunk = max(1, max_rows // b)
    fork = fork_layer(model, masks)
    outs = []
    with torch.no_grad(), split_inputs(model):
        shared: list[torch.Tensor] = []  # senders before the fork, [1, pos, n, B, d_model] each
        if fork:
            early = {h: m[:1] for h, m in masks.items() if _layer(h) < fork}
            resid = model.run_with_hooks(tokens, stop_at_layer=fork,
                                         fwd_hooks=edge_hooks(model, early, ablated, 1, diffs=shared))  # [B, pos, d_model]
        late = {h: m for h, m in masks.items() if _layer(h) >= fork}
        for lo in range(0, k_total, per_chunk):
            chunk = {h: m[lo : lo + per_chunk] for h, m in late.items()}
            k = min(per_chunk, k_total - lo)
            hooks = edge_hooks(model, chunk, ablated, k, diffs=[d.expand(k, *d.shape[1:]) for d in shared])
            if fork:
                logits = model.run_with_hooks(resid.repeat(k, 1, 1), start_at_layer=fork, fwd_hooks=hooks)
            else:
                logits = model.run_with_hooks(tokens.repeat(k, 1), fwd_hooks=hooks)
            outs.append(reduce(logits.view(k, b, *logits.shape[1:])))
    return torch.cat(outs)


@torch.no_grad()
def path_patch_plain(model, tokens: torch.Tensor, clean, reference, sender: str, receiver: str,
                     positions: "torch.Tensor | None" = None) -> torch.Tensor:
    """The reference for :func:`run_edges`: path patching written the plain way, one forward
    per edge. From the caches of the clean run and of the reference run (``run_with_cache``),
    takes the sender's clean and mean-ablated outputs (``embed``: ``hook_resid_pre`` 0; a
    head: its ``z @ W_O``; an MLP: ``hook_mlp_out``) and subtracts their difference from the
    receiver's input (at the bool ``positions`` [pos], default all). Returns the logits
    ``[B, pos, d_vocab]``."""
    def out(cache) -> torch.Tensor:  # [B, pos, d_model]
        if sender == "embed":
            return cache["blocks.0.hook_resid_pre"]
        if sender.startswith("MLP"):
            return cache[utils.get_act_name("mlp_out", int(sender[3:]))]
        layer, head = (int(x) for x in sender[1:].split("H"))
        return cache[utils.get_act_name("z", layer)][:, :, head] @ model.blocks[layer].attn.W_O[head]

    diff = out(clean) - out(reference).mean(0, keepdim=True)  # [B, pos, d_model]
    if positions is not None:
        diff = diff * positions[None, :, None].to(diff.dtype)
    head = int(receiver.split(".")[0].split("H")[1]) if "." in receiver else None

    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        if head is None:
            return act - diff
        act[:, :, head] -= diff
        return act

    with split_inputs(model):
        return model.run_with_hooks(tokens, fwd_hooks=[(receiver_hook(receiver, model.cfg.n_layers), hook)])
