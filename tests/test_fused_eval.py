"""Evaluation through the fused path (``fused_training(inference=True)``) and the one-row position
bias: the hook path's logits and accuracies, for every encoding and attention temperature, at a
length past training; hooks still see the whole batch."""

from __future__ import annotations

import pytest
import torch
from test_fused import encodings, randomise_

from comp.evaluation import evaluate_length
from comp.model import ModelConfig, build_model
from comp.model.fused import fused_everywhere, fused_training
from comp.tasks import make_task


def one_length(length=12, n=6):
    """``n`` sequences of one length: every row has the same layout (and position ids)."""
    return make_task("parity").sample(torch.Generator().manual_seed(4), str(length), n).tokens


@pytest.mark.parametrize("pe", encodings())
def test_inference_logits_equal_the_hook_path(pe):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48), seed=1)
    randomise_(model)
    model.eval()
    tokens = one_length()
    with torch.no_grad():
        hook = model(tokens)  # [batch, pos, d_vocab]
        with fused_training(model, inference=True):
            fused = model(tokens)
    torch.testing.assert_close(fused, hook, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pe", ["t5+coupling", "alibi", "rotary", "standard"])
def test_evaluation_rows_equal_the_hook_path(pe, monkeypatch):
    cfg = ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=80, attn_scale="logn", attn_jitter=0.5)
    model = build_model(cfg, seed=3)
    randomise_(model)
    task = make_task("parity")
    fused = evaluate_length(model, task, 20, n=24, generate=True)
    with fused_training(model, inference=True):
        assert fused_everywhere(model.eval())
    monkeypatch.setattr("comp.evaluation.fused_training", lambda m, inference=False: fused_training(m, False))
    hook = evaluate_length(model, task, 20, n=24, generate=True)
    assert fused.acc_cot == hook.acc_cot and fused.acc_generate == hook.acc_generate
    assert fused.loss == pytest.approx(hook.loss, rel=1e-4, abs=1e-6)


def test_hooks_still_see_the_whole_batch():
    model = build_model(ModelConfig(encoding="t5+coupling", d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    tokens = one_length()
    with fused_training(model, inference=True):
        assert fused_everywhere(model)
        seen = []
        model.blocks[0].attn.hook_pattern.add_hook(lambda x, hook: seen.append(x.shape))
        assert not fused_everywhere(model)  # a hook on the pattern sends that layer down the hook path
        model(tokens)
        model.reset_hooks()
    assert seen == [(6, 2, tokens.shape[1], tokens.shape[1])]
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.attn.hook_t5_bias"].shape == (6, 2, tokens.shape[1], tokens.shape[1])
    assert "comp_fused_inference" not in vars(model.blocks[0].attn)  # the context put every module back


def test_one_bias_row_only_for_equal_layouts():
    model = build_model(ModelConfig(encoding="t5+coupling", d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    mixed = make_task("parity").sample(torch.Generator().manual_seed(0), "1-6", 8).tokens  # different layouts
    seen = []
    with torch.no_grad():
        for tokens in (one_length(), mixed):
            model.blocks[0].attn.position_bias = (lambda f: (lambda q, k: seen.append(f(q, k).shape[0]) or f(q, k)))(
                type(model.blocks[0].attn).position_bias.__get__(model.blocks[0].attn))
            model(tokens)
    assert seen == [1, 8]


def test_nested_contexts_restore_every_module():
    """The training loop's context around a periodic evaluation's: both put every module back."""
    model = build_model(ModelConfig(encoding="t5+coupling", d_model=32, n_heads=2, n_ctx=64), seed=0).train()
    with fused_training(model):
        outer = model.blocks[0].attn.forward
        with fused_training(model, inference=True):
            assert model.blocks[0].attn.forward == outer and model.blocks[0].attn.comp_fused_inference
            assert fused_everywhere(model.eval())
        assert "comp_fused_inference" not in vars(model.blocks[0].attn)
        assert not fused_everywhere(model)  # evaluation mode, outer context only: the hook path
        assert model.train().blocks[0].attn.forward == outer
    assert "forward" not in vars(model.blocks[0].attn) and "forward" not in vars(model.blocks[0].ln1)
