"""A block's position-wise steps in fewer, cheaper operators, for the patching closed forms.

The closed forms of a patching sweep (:mod:`comp.circuits.last_layer`,
:mod:`comp.circuits.plain_run`) run LayerNorms and MLPs on a few hundred rows, where
TransformerLens's modules cost more than their arithmetic:

- ``LayerNorm`` is eight operators (mean, subtract, square, mean, add, root, divide,
  affine); :func:`layer_norm` is one ``F.layer_norm`` call with the same weights and eps;
- the exact GELU (``F.gelu``) has no vectorised float64 kernel on the CPU: at float64 it
  costs 3-5x ``x / 2 * (1 + erf(x / sqrt 2))`` with torch's vectorised ``erf``, which is the
  same function (the two differ by under 1e-15, tests: ``tests/test_circuits_arithmetic.py``).

Both are used only where the module is exactly TransformerLens's (``LayerNorm``; ``MLP``
with ``act_fn="gelu"``, no layer norm inside): anything else runs the module itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformer_lens.components import LayerNorm
from transformer_lens.components.mlps.mlp import MLP

SQRT_HALF = 1 / math.sqrt(2)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU ``x * Phi(x)`` through ``erf`` (a new tensor; ``x`` is left alone)."""
    out = torch.erf(x * SQRT_HALF)  # [..., d]
    return out.add_(1).mul_(x).mul_(0.5)


def layer_norm(ln, x: torch.Tensor) -> torch.Tensor:
    """``ln(x)`` [..., d_model]: one ``F.layer_norm`` for TransformerLens's ``LayerNorm``
    (float32/64), the module itself otherwise."""
    if type(ln) is LayerNorm and x.dtype in (torch.float32, torch.float64):
        return F.layer_norm(x, (x.shape[-1],), ln.w, ln.b, ln.eps)
    return ln(x.contiguous())


def plain_mlp(block) -> bool:
    """Whether ``block``'s MLP is TransformerLens's ``MLP`` with the exact GELU and nothing after it."""
    cfg = block.cfg
    return (type(block.mlp) is MLP and cfg.act_fn == "gelu" and not cfg.is_layer_norm_activation()
            and not cfg.use_normalization_before_and_after and not cfg.use_hook_mlp_in)


def mlp_out(block, resid_mid: torch.Tensor) -> torch.Tensor:
    """``hook_mlp_out`` [..., d_model] of ``block`` from its ``resid_mid`` [..., d_model]:
    ``block.apply_mlp(block.ln2(resid_mid))``, in fewer operators where :func:`plain_mlp`."""
    resid_mid = resid_mid.contiguous()
    if not plain_mlp(block):
        return block.apply_mlp(block.ln2(resid_mid))
    mlp = block.mlp
    h = layer_norm(block.ln2, resid_mid)
    flat = h.reshape(-1, h.shape[-1])  # [rows, d_model]
    pre = torch.addmm(mlp.b_in, flat, mlp.W_in)  # [rows, d_mlp]
    return torch.addmm(mlp.b_out, F.gelu(pre), mlp.W_out).view(*h.shape[:-1], -1)  # [..., d_model]
