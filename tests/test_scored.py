"""Scored positions only in the last block (comp.model.scored): the hook path's logits and
gradients at those positions for every encoding, the full forward when a hook looks, and
bucketed training steps with the padded hook path's loss."""

from __future__ import annotations

import pytest
import torch
from test_fused import encodings, randomise_

import comp.model.scored
from comp.model import ModelConfig, build_model
from comp.model.fused import fused_training
from comp.model.scored import scored_logits
from comp.tasks import make_task
from comp.train.buckets import forward_backward

START = 5  # lengths 3-6: the end-of-input token sits at 4..7, the first scored prediction at 4 or later


def tokens(seed=0, n=12):
    return make_task("parity").sample(torch.Generator().manual_seed(seed), "3-6", n).tokens


def tail_calls(monkeypatch) -> list:
    """Count the calls of the last-block-at-scored-positions path."""
    calls, original = [], comp.model.scored.last_block

    def counting(*args):
        calls.append(args[1].shape)
        return original(*args)

    monkeypatch.setattr(comp.model.scored, "last_block", counting)
    return calls


def logits_and_grads(model, toks, scored: bool):
    """``logits[:, START:]`` and gradients: scored_logits in the fused path, or the hook path sliced."""
    model.zero_grad(set_to_none=True)
    with fused_training(model, scored), model.sampled_positions(toks, torch.Generator().manual_seed(7)):
        logits = scored_logits(model, toks, START) if scored else model(toks)[:, START:]
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(3))
    (logits * weights).mean().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(model, toks):
    (fast, g_fast), (hook, g_hook) = logits_and_grads(model, toks, True), logits_and_grads(model, toks, False)
    assert fast.shape == hook.shape == (toks.shape[0], toks.shape[1] - START, model.cfg.d_vocab)
    torch.testing.assert_close(fast, hook, atol=1e-5, rtol=1e-5)
    assert g_fast.keys() == g_hook.keys()
    for name, g in g_hook.items():
        torch.testing.assert_close(g_fast[name], g, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("pe", encodings())
def test_same_logits_and_gradients_at_scored_positions(pe, monkeypatch):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48), seed=1).train()
    randomise_(model)
    calls = tail_calls(monkeypatch)
    assert_same(model, tokens())
    # the shortened last block ran (shortformer adds its embedding inside the block: full forward)
    assert len(calls) == (0 if pe.startswith("shortformer") else 1)


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling", "alibi+randomized", "standard"])
@pytest.mark.parametrize("scale, jitter", [("logn", 0.0), ("logn", 0.5)])
def test_same_with_attention_temperature(pe, scale, jitter, monkeypatch):
    cfg = ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_scale=scale, attn_jitter=jitter)
    model = build_model(cfg, seed=2).train()
    randomise_(model)
    calls = tail_calls(monkeypatch)
    assert_same(model, tokens(seed=3))
    assert len(calls) == 1


def test_a_hook_anywhere_gets_the_full_forward(monkeypatch):
    model = build_model(ModelConfig(encoding="rotary", d_model=32, n_heads=2, n_ctx=64), seed=0).train()
    toks = tokens()
    seen = []
    model.blocks[1].hook_resid_post.add_hook(lambda x, hook: seen.append(x.shape))
    calls = tail_calls(monkeypatch)
    with fused_training(model):
        logits = scored_logits(model, toks, START)
    assert calls == [] and seen == [(12, toks.shape[1], 32)]  # the hook saw every position
    assert logits.shape[1] == toks.shape[1] - START


@pytest.mark.parametrize("pe, jitter", [("rotary", 0.0), ("standard+randomized", 0.5), ("t5+coupling", 0.0)])
def test_fused_buckets_give_the_padded_hook_path_loss(pe, jitter, monkeypatch):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=40,
                                    attn_jitter=jitter), seed=0).train()
    batch = make_task("parity").sample(torch.Generator().manual_seed(0), "1-8", 40)
    calls = tail_calls(monkeypatch)
    results = []
    for n, fused in ((1, False), (3, True)):
        model.zero_grad(set_to_none=True)
        with fused_training(model, fused), model.sampled_positions(batch.tokens, torch.Generator().manual_seed(1)):
            loss = forward_backward(model, model, batch, n, packing=False)  # buckets; packed: test_packed.py
        results.append((loss, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    (padded, g1), (fast, g3) = results
    assert len(calls) == 3  # every bucket computed its last block at scored positions only
    assert all(shape[1] < 2 * 8 + 3 for shape in calls)
    torch.testing.assert_close(fast, padded, atol=1e-6, rtol=1e-5)
    for k in g1:
        torch.testing.assert_close(g3[k], g1[k], atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.parametrize("adjacent", [False, True])
def test_fused_rotation_is_transformer_lens_exactly(adjacent):
    model = build_model(ModelConfig(encoding="rotary", d_model=32, n_heads=2, n_ctx=64), seed=0).train()
    attn = model.blocks[0].attn
    attn.cfg.rotary_adjacent_pairs = adjacent
    x = torch.randn(3, 5, 2, 16)
    want = attn.rotate_every_two(x)
    with fused_training(model):
        assert "rotate_every_two" in vars(attn)
        assert torch.equal(attn.rotate_every_two(x), want)
    assert "rotate_every_two" not in vars(attn)
