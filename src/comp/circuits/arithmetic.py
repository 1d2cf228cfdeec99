"""A block's steps in fewer operators, for the patching closed forms.

The closed forms of a patching sweep (:mod:`comp.circuits.last_layer`,
:mod:`comp.circuits.plain_run`) run LayerNorms, projections and MLPs on a few hundred
rows, where TransformerLens's modules cost more than their arithmetic:

- ``LayerNorm`` is eight operators (mean, subtract, square, mean, add, root, divide,
  affine); :func:`layer_norm` is one ``F.layer_norm`` call with the same weights and eps;
- the queries, keys and values are one product (:func:`projections`), not one each;
- the MLP is two ``addmm`` and the activation (in place where torch has the kernel: one
  ``[rows, d_mlp]`` buffer fewer), without the hook points (:func:`mlp_out`).

Each is used only where the module is exactly TransformerLens's (``LayerNorm``; ``MLP``
without a layer norm inside): anything else runs the module itself. The
values equal the modules' to rounding (tests: the sweeps equal TransformerLens's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformer_lens.components import LayerNorm
from transformer_lens.components.mlps.mlp import MLP

IN_PLACE = {F.gelu: getattr(torch._C._nn, "gelu_", None), F.relu: torch.relu_}  # activations with an in-place kernel


def layer_norm(ln, x: torch.Tensor) -> torch.Tensor:
    """``ln(x)`` [..., d_model]: one ``F.layer_norm`` for TransformerLens's ``LayerNorm``
    (float32/64), the module itself otherwise."""
    if type(ln) is LayerNorm and x.dtype in (torch.float32, torch.float64):
        return F.layer_norm(x, (x.shape[-1],), ln.w, ln.b, ln.eps)
    return ln(x.contiguous())


def plain_mlp(block) -> bool:
    """Whether ``block``'s MLP is TransformerLens's ``MLP`` (no layer norm inside) and nothing after it."""
    cfg = block.cfg
    return (type(block.mlp) is MLP and not cfg.is_layer_norm_activation()
            and not cfg.use_normalization_before_and_after and not cfg.use_hook_mlp_in)


def mlp_out(block, resid_mid: torch.Tensor, scratch: "torch.Tensor | None" = None) -> torch.Tensor:
    """``hook_mlp_out`` [..., d_model] of ``block`` from its ``resid_mid`` [..., d_model]:
    ``block.apply_mlp(block.ln2(resid_mid))``, in fewer operators where :func:`plain_mlp`.
    ``scratch``: a buffer of the dtype that holds the hidden layer ``[rows, d_mlp]`` if it is
    large enough (a buffer kept between calls: no fresh pages for the largest temporary)."""
    resid_mid = resid_mid.contiguous()
    if not plain_mlp(block):
        return block.apply_mlp(block.ln2(resid_mid))
    mlp = block.mlp
    h = layer_norm(block.ln2, resid_mid)
    flat = h.reshape(-1, h.shape[-1])  # [rows, d_model]
    size = flat.shape[0] * mlp.W_in.shape[1]
    if scratch is not None and scratch.numel() >= size and scratch.dtype == flat.dtype:
        pre = torch.addmm(mlp.b_in, flat, mlp.W_in, out=scratch[:size].view(flat.shape[0], -1))  # [rows, d_mlp]
    else:
        pre = torch.addmm(mlp.b_in, flat, mlp.W_in)
    act = IN_PLACE.get(mlp.act_fn)  # the same kernel without a second [rows, d_mlp] buffer
    post = act(pre) if act is not None else mlp.act_fn(pre)
    return torch.addmm(mlp.b_out, post, mlp.W_out).view(*h.shape[:-1], -1)  # [..., d_model]


def projections(attn, h: torch.Tensor, kinds: str) -> tuple[torch.Tensor, ...]:
    """The ``kinds`` (letters of ``"QKV"``) of ``h`` [..., d_model] in one product: each ``[..., head, d_head]``."""
    ws = [getattr(attn, f"W_{kind}") for kind in kinds]  # [head, d_model, d_head] each
    heads, d_model, d_head = ws[0].shape
    w = torch.stack(ws).permute(0, 1, 3, 2).reshape(-1, d_model)  # [kinds * head * d_head, d_model]
    b = torch.stack([getattr(attn, f"b_{kind}") for kind in kinds]).reshape(-1)
    return F.linear(h, w, b).view(*h.shape[:-1], len(kinds), heads, d_head).unbind(-3)
