"""The fused training path (comp.model.fused): the hook path's logits and gradients for every
encoding and attention temperature, hooks honoured, evaluation untouched."""

from __future__ import annotations

import pytest
import torch

import comp.model.fused
from comp.model import ModelConfig, build_model
from comp.model.encodings import BASES, ENCODINGS
from comp.model.fused import fused_training
from comp.tasks import make_task


def encodings() -> list[str]:
    """Every base, alone and with each modifier it takes, and coupling with randomized."""
    names = []
    for base in BASES:
        takes = ENCODINGS[base].takes
        names += [base] + [f"{base}+{m}" for m in takes]
        if "coupling" in takes and "randomized" in takes:
            names.append(f"{base}+coupling+randomized")
    return names


def batch(seed=0, n=12):
    """Mixed lengths 1-6, right-padded (one batch of the training stream)."""
    return make_task("parity").sample(torch.Generator().manual_seed(seed), "1-6", n).tokens


def forward_backward(model, tokens, fused: bool):
    """Logits and gradients of one training forward (ids and jitter drawn from one seeded stream)."""
    model.zero_grad(set_to_none=True)
    with fused_training(model, fused), model.sampled_positions(tokens, torch.Generator().manual_seed(7)):
        logits = model(tokens)  # [batch, pos, d_vocab]
    targets = torch.randint(0, logits.shape[-1], tokens.shape, generator=torch.Generator().manual_seed(5))
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(model, tokens):
    calls = []
    original = comp.model.fused.fused_attention

    def counting(*args):
        calls.append(1)
        return original(*args)

    comp.model.fused.fused_attention = counting
    try:
        fused_logits, fused_grads = forward_backward(model, tokens, fused=True)
    finally:
        comp.model.fused.fused_attention = original
    assert len(calls) == model.cfg.n_layers  # the fused kernel ran in every layer
    hook_logits, hook_grads = forward_backward(model, tokens, fused=False)
    torch.testing.assert_close(fused_logits, hook_logits, atol=1e-5, rtol=1e-5)
    assert fused_grads.keys() == hook_grads.keys()
    for name, g in hook_grads.items():
        torch.testing.assert_close(fused_grads[name], g, atol=1e-5, rtol=1e-4, msg=name)


def randomise_(model):
    """Non-trivial weights everywhere (T5 biases and logn scales start at constants)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "t5_bias" in name or "ssmax_scale" in name or name.endswith(".w"):
                p.copy_(1 + 0.5 * torch.randn_like(p))


@pytest.mark.parametrize("pe", encodings())
def test_same_logits_and_gradients_as_the_hook_path(pe):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48), seed=1).train()
    randomise_(model)
    assert_same(model, batch())


@pytest.mark.parametrize("pe", ["standard", "rotary", "t5+coupling", "alibi", "alibi+randomized"])
@pytest.mark.parametrize("scale, jitter", [("logn", 0.0), ("none", 0.5), ("logn", 0.5)])
def test_same_with_attention_temperature(pe, scale, jitter):
    cfg = ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, attn_scale=scale, attn_jitter=jitter)
    model = build_model(cfg, seed=2).train()
    randomise_(model)
    assert_same(model, batch(seed=3))


def test_hooks_and_evaluation_take_the_hook_path():
    model = build_model(ModelConfig(encoding="t5", d_model=32, n_heads=2, n_ctx=64), seed=0).train()
    tokens = batch()
    seen = []
    model.blocks[1].attn.hook_pattern.add_hook(lambda x, hook: seen.append(x.shape))
    with fused_training(model):
        model(tokens)
        model.eval()
        model(tokens)
    assert seen == [(12, 2, tokens.shape[1], tokens.shape[1])] * 2  # the hooked layer still computed its pattern
    model.reset_hooks()
    _, cache = model.run_with_cache(tokens)
    assert "blocks.0.attn.hook_pattern" in cache and "blocks.0.ln1.hook_scale" in cache
    assert "forward" not in vars(model.blocks[0].attn)  # the context put every module back
