"""Whole sweeps of plain 2-layer rotary models (comp.circuits.fast_sweep): taken only where
they apply, equal to TransformerLens's one-forward-per-patch loop and to the generic path,
and their corrupted run equal to the model's own forward."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching as tl_patching
from transformer_lens import utils

from comp.circuits import fast_sweep, patching
from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos, patch_mlp_out, patch_resid_pre
from comp.model import ModelConfig, build_model
from comp.runs.load import load_run_for_lengths
from comp.tasks import make_task

PAIRS = [(patch_resid_pre, tl_patching.get_act_patch_resid_pre, "resid_pre"),
         (patch_head_out_by_pos, tl_patching.get_act_patch_attn_head_out_by_pos, "z"),
         (patch_mlp_out, tl_patching.get_act_patch_mlp_out, "mlp_out")]


def model_of(seed: int = 3, **settings):
    cfg = ModelConfig(**{"n_layers": 2, "n_heads": 2, "d_model": 16, "n_ctx": 32, **settings})
    return build_model(cfg, seed=seed).to(torch.float64).eval()


@pytest.mark.parametrize("settings,takes", [
    ({}, True), ({"attn_only": True}, True), ({"normalization": "RMS", "act_fn": "relu"}, True),
    ({"n_layers": 3}, False), ({"n_layers": 1}, False), ({"encoding": "t5"}, False), ({"encoding": "alibi"}, False),
    ({"encoding": "standard"}, False), ({"encoding": "rotary+coupling"}, False), ({"attn_scale": "logn"}, False),
    ({"encoding": "rotary+coupling+randomized"}, False),
])
def test_taken_only_for_plain_two_layer_rotary_models(settings, takes):
    model = model_of(**settings)
    assert fast_sweep.applies(model, "z") == takes
    pair = make_pair(make_task("parity"), 4, 4, seed=0, corruption="flip_one")
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    assert (fast_sweep.sweep(model, pair.corrupted.tokens, clean, metric, "z", 64) is not None) == takes


def sweeps(model, pair, max_rows: int = 64):
    """Each sweep: (fast path, generic path, TransformerLens), on the same clean cache and metric."""
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    tokens = pair.corrupted.tokens
    for ours, theirs, activation in PAIRS:
        if activation == "mlp_out" and model.cfg.attn_only:
            continue
        fast = fast_sweep.sweep(model, tokens, clean, metric, activation, max_rows)
        if fast is None:  # resid_pre of layer 0 changed at more than one position: the generic path
            assert activation == "resid_pre" and int((pair.clean.tokens != tokens).any(0).sum()) > 1
            continue
        generic = ours.func(model, tokens, clean, metric, **ours.keywords, max_rows=max_rows, fast=False)
        yield activation, fast, generic, theirs(model, tokens, clean, metric)


@pytest.mark.parametrize("settings", [{}, {"attn_only": True}, {"normalization": "RMS", "act_fn": "relu"},
                                      {"n_heads": 4, "d_model": 32}])
@pytest.mark.parametrize("corruption", ["flip_one", "flip_random", "resample_input"])
def test_equal_to_transformer_lens_and_the_generic_path(settings, corruption):
    model = model_of(**settings)
    pair = make_pair(make_task("parity"), 5, 6, seed=1, corruption=corruption)
    for activation, fast, generic, theirs in sweeps(model, pair, max_rows=13):  # passes of two variants
        assert fast.shape == theirs.shape and fast.dtype == theirs.dtype
        torch.testing.assert_close(fast, theirs, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast, generic, atol=1e-6, rtol=0)  # float32 results of float64 values
        assert fast.abs().max() > 0.05 or activation == "resid_pre"  # something was restored


@pytest.mark.parametrize("cached", [True, False])
def test_corrupted_run_equals_the_forward(cached):
    """The written-out corrupted run holds the model's own activations (float64, 1e-10),
    from the clean run's rotated queries and keys or without them."""
    model = model_of()
    pair = make_pair(make_task("parity"), 5, 6, seed=1, corruption="flip_random")
    metric = LogitDiff.for_pair(model, pair)
    tokens = pair.corrupted.tokens
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
        if not cached:
            clean = {k: v for k, v in clean.items() if k not in fast_sweep.clean_hooks(model)}
        logits, cache = model.run_with_cache(tokens)
        end = metric.last_pos + 1
        emb = model.embed(tokens[:, :end])
        changed = (emb != clean["hook_embed"][:, :end]).any(-1)
        s = int(changed.any(0).int().argmax())
        run = fast_sweep._corrupted(model, fast_sweep.tables(model), clean, emb, changed, s, metric.query)
    rows, q = torch.arange(len(tokens)), metric.query
    expected = {"z0": cache[utils.get_act_name("z", 0)][:, s:end], "mlp0": cache[utils.get_act_name("mlp_out", 0)][:, s:end],
                "resid1": cache[utils.get_act_name("resid_pre", 1)][:, s:end],
                "z1": cache[utils.get_act_name("z", 1)][rows, q], "resid_mid1": cache[utils.get_act_name("resid_mid", 1)][rows, q],
                "logits": logits[rows, q]}
    for name, value in expected.items():
        torch.testing.assert_close(getattr(run, name), value, atol=1e-10, rtol=0, msg=name)


def test_tables_follow_the_weights():
    """An in-place change of the weights (an optimizer step) rebuilds the tables."""
    model = model_of()
    pair = make_pair(make_task("parity"), 4, 5, seed=2, corruption="flip_one")
    list(sweeps(model, pair))
    held = fast_sweep.tables(model)
    with torch.no_grad():
        model.blocks[1].attn.W_K.mul_(3.0)
        model.blocks[0].attn.W_V.add_(0.5)
    assert fast_sweep.tables(model) is not held
    for _, fast, _, theirs in sweeps(model, pair):
        torch.testing.assert_close(fast, theirs, atol=1e-5, rtol=0)


def test_equal_to_transformer_lens_on_a_trained_model_in_float32(trained_run):
    model = load_run_for_lengths(str(trained_run), [4]).model
    assert next(model.parameters()).dtype == torch.float32
    pair = make_pair(make_task("parity"), 4, 24, seed=0, corruption="flip_one")
    for _, fast, _, theirs in sweeps(model, pair, max_rows=8192):
        torch.testing.assert_close(fast, theirs, atol=1e-5, rtol=0)


def test_patch_sweep_takes_it(monkeypatch):
    """`comp patch` (patch_sweep) caches what the fast path needs: every sweep takes it."""
    model = model_of()
    pair = make_pair(make_task("parity"), 5, 6, seed=0, corruption="flip_one", at=2)
    taken = []
    real = fast_sweep._corrupted
    monkeypatch.setattr(fast_sweep, "_corrupted", lambda *a, **k: taken.append(a[5]) or real(*a, **k))
    result = patching.patch_sweep(model, pair)
    assert taken == [2, 2, 2]  # resid_pre, head_out, mlp_out, from x_2 (token 2)
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    expected = tl_patching.get_act_patch_mlp_out(model, pair.corrupted.tokens, clean, metric)
    torch.testing.assert_close(torch.tensor(result.mlp_out, dtype=expected.dtype), expected, atol=1e-5, rtol=0)
