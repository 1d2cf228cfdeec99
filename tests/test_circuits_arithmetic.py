"""The patching closed forms' block steps in fewer operators equal TransformerLens's modules."""

from __future__ import annotations

import pytest
import torch

from comp.circuits.arithmetic import layer_norm, mlp_out, plain_mlp, projections
from comp.model import ModelConfig, build_model


@pytest.mark.parametrize("settings", [{}, {"act_fn": "relu"}, {"normalization": "none"}])
def test_equal_to_the_modules(settings):
    model = build_model(ModelConfig(n_layers=1, n_heads=2, d_model=16, n_ctx=16, **settings), seed=3).to(torch.float64).eval()
    block, attn = model.blocks[0], model.blocks[0].attn
    x = torch.randn(3, 5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))  # [batch, pos, d_model]
    with torch.no_grad():
        torch.testing.assert_close(layer_norm(block.ln1, x), block.ln1(x), atol=1e-12, rtol=0)
        torch.testing.assert_close(mlp_out(block, x), block.apply_mlp(block.ln2(x)), atol=1e-12, rtol=0)
        for kind, got in zip("QKV", projections(attn, x, "QKV")):  # [batch, pos, head, d_head]
            want = torch.einsum("bpm,hmd->bphd", x, getattr(attn, f"W_{kind}")) + getattr(attn, f"b_{kind}")
            torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
        (k,) = projections(attn, x[:, 2], "K")  # any leading shape
        torch.testing.assert_close(k, projections(attn, x, "QKV")[1][:, 2], atol=1e-12, rtol=0)
    assert plain_mlp(block)
