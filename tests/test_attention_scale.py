"""Scalable softmax (attn_scale=logn): logits scaled by s_h * log(keys seen), hooks intact."""

from __future__ import annotations

import math

import pytest
import torch

from comp.errors import CompError
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


def tokens(n=4):
    return make_task("parity").sample(torch.Generator().manual_seed(0), 6, n).tokens


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling", "alibi"])
def test_logits_are_the_plain_ones_times_log_of_keys_seen(pe):
    plain = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    scaled = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_scale="logn"), seed=0).eval()
    with torch.no_grad():
        scaled.blocks[0].attn.ssmax_scale.copy_(torch.tensor([1.0, 2.0]))
        for name, p in plain.named_parameters():
            dict(scaled.named_parameters())[name].copy_(p)
    toks = tokens()
    _, a = plain.run_with_cache(toks, names_filter=lambda n: n == "blocks.0.attn.hook_attn_scores")
    _, b = scaled.run_with_cache(toks, names_filter=lambda n: n == "blocks.0.attn.hook_attn_scores")
    a, b = a["blocks.0.attn.hook_attn_scores"], b["blocks.0.attn.hook_attn_scores"]
    q = toks.shape[1]
    logn = torch.log(torch.arange(1, q + 1).float())[None, None, :, None]
    s = torch.tensor([1.0, 2.0])[None, :, None, None]
    causal = torch.ones(q, q).tril().bool()
    torch.testing.assert_close(b[..., causal], (a * s * logn)[..., causal], atol=1e-5, rtol=1e-5)


def test_a_fixed_margin_stays_sharp_as_keys_grow():
    """The point of the scale: one key leading n-1 others by a margin keeps its weight."""
    for margin in (2.0,):
        weights = []
        for n in (16, 64, 256):
            logits = torch.zeros(n)
            logits[0] = margin
            plain = torch.softmax(logits, 0)[0].item()
            scaled = torch.softmax(logits * math.log(n), 0)[0].item()
            weights.append((plain, scaled))
        assert weights[0][0] > weights[-1][0] * 8  # plain softmax dilutes like 1/n
        assert weights[-1][1] > weights[0][1] > 0.9  # scaled: sharper as n grows


def test_unknown_attn_scale():
    with pytest.raises(CompError, match="unknown attn_scale"):
        ModelConfig(attn_scale="log")
