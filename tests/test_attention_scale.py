"""Scalable softmax (attn_scale=logn): logits scaled by s_h * log(keys seen), hooks intact."""

from __future__ import annotations

import math

import pytest
import torch

from comp.config import build_config
from comp.errors import CompError
from comp.io import load_tensors
from comp.model import ModelConfig, build_model
from comp.tasks import make_task
from comp.train.loop import train


def tokens(n=4):
    return make_task("parity").sample(torch.Generator().manual_seed(0), 6, n).tokens


def _copy(src, dst):
    """Give ``dst`` the weights of ``src`` (parameters of the same names)."""
    with torch.no_grad():
        for name, p in src.named_parameters():
            dict(dst.named_parameters())[name].copy_(p)


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling", "alibi"])
def test_logits_are_the_plain_ones_times_log_of_keys_seen(pe):
    plain = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    scaled = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_scale="logn"), seed=0).eval()
    _copy(plain, scaled)
    with torch.no_grad():
        scaled.blocks[0].attn.ssmax_scale.copy_(torch.tensor([1.0, 2.0]))
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


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling"])
def test_jitter_multiplies_each_sequences_logits_in_training_only(pe):
    plain = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64), seed=0)
    jit = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_jitter=0.5), seed=0)
    _copy(plain, jit)
    toks = tokens()
    name = "blocks.0.attn.hook_attn_scores"  # the first layer: its inputs are unchanged
    _, a = plain.run_with_cache(toks, names_filter=lambda n: n == name)
    gen = torch.Generator().manual_seed(3)
    with jit.sampled_positions(toks, gen):
        _, b = jit.run_with_cache(toks, names_filter=lambda n: n == name)
    factor = 1 - 0.5 * torch.rand(toks.shape[0], generator=torch.Generator().manual_seed(3))  # [batch]
    assert factor.min() < 0.9 and factor.max() <= 1.0 and factor.min() >= 0.5
    q = toks.shape[1]
    causal = torch.ones(q, q).tril().bool()
    torch.testing.assert_close(b[name][..., causal], (a[name] * factor[:, None, None, None])[..., causal],
                               atol=1e-5, rtol=1e-5)
    # outside sampled_positions, and in eval mode even inside it, nothing is scaled
    _, c = jit.run_with_cache(toks, names_filter=lambda n: n == name)
    jit.eval()
    with jit.sampled_positions(toks, gen):
        _, d = jit.run_with_cache(toks, names_filter=lambda n: n == name)
    torch.testing.assert_close(c[name], a[name])
    torch.testing.assert_close(d[name], a[name])


def test_jitter_training_is_deterministic_and_changes_the_weights(tmp_path):
    def weights(jitter, name):
        cfg = build_config("parity", None, [f"model.attn_jitter={jitter}", "model.d_model=16", "model.n_heads=2",
                                            "train.batch_size=8", "train.eval_every=0"],
                           encoding="rotary", seed=0, steps=3, train_lengths="1-4")
        train(cfg, tmp_path / name, quiet=True)
        return load_tensors(tmp_path / name / "model.safetensors")

    a, b, c = weights(0.5, "a"), weights(0.5, "b"), weights(0.0, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_bad_jitter():
    with pytest.raises(CompError, match="attn_jitter must lie in"):
        ModelConfig(attn_jitter=1.0)

