"""The last layer's closed forms (comp.circuits.last_layer): patching sweeps equal to
TransformerLens's one-forward-per-patch loop on every architecture the closed forms take,
and on those they leave to the general path."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching as tl_patching

from comp.circuits import last_layer
from comp.circuits.patching import LogitDiff, make_pair, patch_head_out_by_pos, patch_mlp_out, patch_resid_pre
from comp.model import ModelConfig, build_model
from comp.tasks import make_task

PAIRS = [
    (patch_resid_pre, tl_patching.get_act_patch_resid_pre, "resid_pre"),
    (patch_head_out_by_pos, tl_patching.get_act_patch_attn_head_out_by_pos, "z"),
    (patch_mlp_out, tl_patching.get_act_patch_mlp_out, "mlp_out"),
]

MODELS = {  # name: ModelConfig settings (float64 random models: see test_circuits_patching.random_model)
    "rotary logn": dict(attn_scale="logn"),
    "t5+coupling logn jitter": dict(encoding="t5+coupling", attn_scale="logn", attn_jitter=0.75),
    "rotary+coupling+randomized logn": dict(encoding="rotary+coupling+randomized", attn_scale="logn"),
    "alibi RMS": dict(encoding="alibi", normalization="RMS"),
    "one layer": dict(n_layers=1),
    "three layers": dict(n_layers=3),
    "attention only": dict(attn_only=True),
    "no normalisation relu": dict(normalization="none", act_fn="relu"),
    "shortformer": dict(encoding="shortformer"),
}


def model_of(settings: dict, seed: int = 3):
    cfg = ModelConfig(**{"n_layers": 2, "n_heads": 2, "d_model": 16, "n_ctx": 32, **settings})
    model = build_model(cfg, seed=seed).to(torch.float64).eval()
    if hasattr(model.blocks[-1].attn, "ssmax_scale"):  # learned log-n scales away from their initial 1
        for block in model.blocks:
            block.attn.ssmax_scale.data = torch.linspace(0.5, 1.5, cfg.n_heads, dtype=torch.float64)
    return model


@pytest.mark.parametrize("name", list(MODELS))
def test_equal_to_transformer_lens(name):
    model = model_of(MODELS[name])
    task = make_task("parity")
    for corruption, n in (("flip_random", 6), ("flip_one", 5)):  # several query positions; one
        pair = make_pair(task, 4, n, seed=1, corruption=corruption)
        metric = LogitDiff.for_pair(model, pair)
        with torch.no_grad():
            _, clean = model.run_with_cache(pair.clean.tokens)
        for ours, theirs, activation in PAIRS:
            if activation == "mlp_out" and model.cfg.attn_only:
                continue
            a = ours(model, pair.corrupted.tokens, clean, metric, max_rows=4)  # chunks of one copy
            b = theirs(model, pair.corrupted.tokens, clean, metric)
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
            last = model.cfg.n_layers - 1
            assert a[last].abs().max() > 1e-3 or activation == "resid_pre"  # the closed forms ran on something
            if activation != "resid_pre" and last:
                assert a[last - 1].abs().max() > 1e-3


def test_closed_forms_cover_the_last_two_layers():
    model = model_of({"n_layers": 3})
    take = {(act, layer) for act in ("resid_pre", "z", "mlp_out") for layer in range(3)
            if last_layer.supported(model, act, layer)}
    assert take == {("resid_pre", 2), ("z", 2), ("mlp_out", 2), ("z", 1), ("mlp_out", 1)}
    assert not last_layer.supported(model_of({"attn_only": True}), "mlp_out", 1)
    assert not last_layer.supported(model.train(), "z", 2)  # training mode: jitter may scale the logits


@pytest.mark.parametrize("settings", [{}, {"encoding": "standard"}, {"normalization": "none", "act_fn": "relu"}])
def test_own_position_equals_the_forward_on_the_key_value_cache(settings):
    """A variant at the query itself: the closed form for TransformerLens's plain attention
    equals TransformerLens's forward of the last layer on the corrupted run's keys and values."""
    model = model_of(settings)
    assert last_layer.plain_attention(model) and not last_layer.plain_attention(model_of({"attn_scale": "logn"}))
    pair = make_pair(make_task("parity"), 4, 5, seed=1, corruption="flip_one")
    with torch.no_grad():
        _, cache = model.run_with_cache(pair.corrupted.tokens)
        q, last = 9, model.cfg.n_layers - 1
        rows = torch.arange(5)
        x_q = torch.randn(3, 5, model.cfg.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        ours = last_layer.unembed(model, last_layer._mlp(model.blocks[-1], last_layer._own_position_mid(model, cache, x_q, rows, q)))
        past = [cache[f"blocks.{last}.attn.hook_{kind}"][:, :q][None].expand(3, 5, q, *cache[f"blocks.{last}.attn.hook_{kind}"].shape[2:])
                for kind in ("k", "v")]
        theirs = last_layer._last_layer(model, x_q, *past, None, None)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
