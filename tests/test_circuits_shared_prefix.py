"""The corrupted run from the first changed input (comp.circuits.shared_prefix): equal to a
whole corrupted run where it is computed, taken whenever the clean cache allows it, and
patching sweeps equal to TransformerLens's with it and without it."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching as tl_patching
from transformer_lens import utils

from comp.circuits import last_layer, shared_prefix
from comp.circuits.interventions import prefix_hooks
from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos, patch_mlp_out, patch_resid_pre
from comp.model import ModelConfig, build_model
from comp.tasks import make_task

SWEEPS = [(patch_resid_pre, tl_patching.get_act_patch_resid_pre, "resid_pre"),
          (patch_head_out_by_pos, tl_patching.get_act_patch_attn_head_out_by_pos, "z"),
          (patch_mlp_out, tl_patching.get_act_patch_mlp_out, "mlp_out")]


def model_of(**settings):
    cfg = ModelConfig(**{"n_layers": 2, "n_heads": 2, "d_model": 16, "n_ctx": 32, **settings})
    return build_model(cfg, seed=5).to(torch.float64).eval()


def wanted_of(model, activation: str) -> set[str]:
    n = model.cfg.n_layers
    return {utils.get_act_name(activation, layer) for layer in range(n)} | prefix_hooks(n) | last_layer.cache_hooks(n)


@pytest.mark.parametrize("settings", [{}, {"encoding": "shortformer"}, {"attn_only": True}, {"n_layers": 3}])
def test_corrupted_run_equals_the_whole_run(settings):
    model = model_of(**settings)
    pair = make_pair(make_task("parity"), 5, 6, seed=0, corruption="flip_random")
    metric = LogitDiff.for_pair(model, pair)
    tokens, end = pair.corrupted.tokens, metric.last_pos + 1
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
        logits, whole = model.run_with_cache(tokens[:, :end])
    wanted = wanted_of(model, "mlp_out" if not model.cfg.attn_only else "z")
    first = int((pair.clean.tokens != tokens).any(0).int().argmax())  # the first changed position, any row
    start = shared_prefix.divergence(model, tokens, clean, end, None, wanted)
    assert start == first > 0
    ours, cache = shared_prefix.corrupted_run(model, tokens[:, :end], clean, start, wanted, metric.query)
    rows, query = torch.arange(len(metric.query)), metric.query
    torch.testing.assert_close(ours[rows, query - start], logits[rows, query], atol=1e-10, rtol=0)
    last = model.cfg.n_layers - 1
    for name in wanted & set(whole.keys()):
        if name.endswith("attn_scores"):
            torch.testing.assert_close(cache[name][rows, :, query], whole[name][rows, :, query], atol=1e-10, rtol=0)
        elif name.startswith(f"blocks.{last}.") and not name.endswith(("resid_pre", "hook_k", "hook_v")):
            torch.testing.assert_close(cache[name][rows, query], whole[name][rows, query], atol=1e-10, rtol=0)
            assert cache[name].shape == whole[name].shape  # and NaN where the last layer did not run
        else:
            torch.testing.assert_close(cache[name], whole[name], atol=1e-10, rtol=0)


def test_taken_only_when_the_clean_cache_allows_it():
    model = model_of()
    pair = make_pair(make_task("parity"), 6, 6, seed=0, corruption="flip_one", at=3)
    tokens, wanted = pair.corrupted.tokens, wanted_of(model, "z")
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    assert shared_prefix.divergence(model, tokens, clean, 12, None, wanted) == 3  # x_3 is token 3 (BOS first)
    without_keys = {n: v for n, v in clean.items() if "hook_k" not in n}
    assert shared_prefix.divergence(model, tokens, without_keys, 12, None, wanted) == 0
    assert shared_prefix.divergence(model, tokens, clean, 12, torch.zeros_like(tokens), wanted) == 0  # ids: never


@pytest.mark.parametrize("encoding", ["rotary", "standard", "t5", "alibi", "rotary+coupling"])
def test_sweeps_with_and_without_the_shared_prefix_equal_transformer_lens(encoding):
    model = model_of(encoding=encoding)
    pair = make_pair(make_task("parity"), 5, 7, seed=2, corruption="flip_one")
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    filtered = {n: v for n, v in clean.items() if "hook_k" not in n}  # the whole corrupted run
    for ours, theirs, _ in SWEEPS:
        expected = theirs(model, pair.corrupted.tokens, clean, metric)
        for cache in (clean, filtered):
            torch.testing.assert_close(ours(model, pair.corrupted.tokens, cache, metric), expected, atol=1e-5, rtol=0)
        assert expected.abs().max() > 0.05


def test_a_patch_of_the_only_changed_position_is_the_clean_run():
    """Flipping x_at changes only that token: patching it back at layer 0 is the clean run (1)."""
    model = model_of()
    pair = make_pair(make_task("parity"), 6, 8, seed=1, corruption="flip_one", at=4)
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    out = patch_resid_pre(model, pair.corrupted.tokens, clean, metric)
    assert out[0, 4].item() == pytest.approx(1.0, abs=1e-9)
    others = torch.cat([out[0, :4], out[0, 5:]])
    assert others.abs().max() < 1e-9  # nothing else differs at layer 0: the corrupted run (0)


def test_patch_sweep_caches_what_the_shared_prefix_needs(monkeypatch):
    """`comp patch` (patch_sweep) runs every sweep's corrupted run from the first changed input
    (three layers: two-layer rotary models take comp.circuits.fast_sweep, tested there)."""
    from comp.circuits import patching

    model = model_of(n_layers=3)
    pair = make_pair(make_task("parity"), 5, 6, seed=0, corruption="flip_one", at=2)
    starts = []
    real = shared_prefix.corrupted_run
    monkeypatch.setattr(shared_prefix, "corrupted_run", lambda *a, **k: starts.append(a[3]) or real(*a, **k))
    result = patching.patch_sweep(model, pair)
    assert starts == [2, 2, 2]  # x_2 is token 2: resid_pre, head_out, mlp_out
    metric = LogitDiff.for_pair(model, pair)
    with torch.no_grad():
        _, clean = model.run_with_cache(pair.clean.tokens)
    expected = tl_patching.get_act_patch_attn_head_out_by_pos(model, pair.corrupted.tokens, clean, metric)
    torch.testing.assert_close(torch.tensor(result.head_out, dtype=expected.dtype), expected, atol=1e-5, rtol=0)
