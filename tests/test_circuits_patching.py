"""Batched activation patching: equal to TransformerLens's own functions, exact on a planted circuit."""

from __future__ import annotations

import pytest
import torch
from planted import L, planted_model
from transformer_lens import patching as tl_patching

from comp.circuits.patching import (
    CORRUPTIONS,
    LogitDiff,
    make_pair,
    patch_head_out_by_pos,
    patch_mlp_out,
    patch_resid_pre,
    patch_sweep,
)
from comp.errors import CompError
from comp.model import ModelConfig, build_model
from comp.model.encodings import ENCODINGS
from comp.tasks import make_task

PAIRS = [
    (patch_resid_pre, tl_patching.get_act_patch_resid_pre),
    (patch_head_out_by_pos, tl_patching.get_act_patch_attn_head_out_by_pos),
    (patch_mlp_out, tl_patching.get_act_patch_mlp_out),
]


def random_model(encoding: str, seed: int = 1):
    """A random model in float64: its logit differences are small, and normalising them
    would blow float32 rounding (which differs with batch shapes) past 1e-5."""
    cfg = ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32, encoding=encoding)
    return build_model(cfg, seed=seed).to(torch.float64).eval()


def both(model, pair, ours, theirs, **kw):
    metric = LogitDiff.for_pair(model, pair)
    _, clean = model.run_with_cache(pair.clean.tokens)
    return ours(model, pair.corrupted.tokens, clean, metric, **kw), theirs(model, pair.corrupted.tokens, clean, metric)


@pytest.mark.parametrize("encoding", [*ENCODINGS, "rotary+coupling+randomized", "t5+coupling", "standard+abacus"])
def test_equal_to_transformer_lens_on_every_encoding(encoding):
    model = random_model(encoding)
    pair = make_pair(make_task("parity"), 3, 6, seed=0, corruption="flip_random")
    for ours, theirs in PAIRS:
        a, b = both(model, pair, ours, theirs)
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        assert a.abs().max() > 0.05  # something was restored: the comparison is not of zeros


@pytest.mark.parametrize("task,corruption", [("parity_nocot", "flip_one"), ("polynomial", "resample_input"),
                                             ("copy", "flip_one")])
def test_equal_to_transformer_lens_on_other_tasks(task, corruption):
    model = random_model("rotary", seed=2)
    pair = make_pair(make_task(task), 3, 5, seed=0, corruption=corruption, at=2)
    for ours, theirs in PAIRS:
        a, b = both(model, pair, ours, theirs, max_rows=7)  # chunks of one copy: the chunking is exercised
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_equal_to_transformer_lens_in_float32_on_the_planted_model():
    model = planted_model()
    pair = make_pair(make_task("parity"), L, 8, seed=0, corruption="flip_random")
    for ours, theirs in PAIRS:
        torch.testing.assert_close(*both(model, pair, ours, theirs), atol=1e-5, rtol=0)


def test_planted_circuit_is_found_exactly():
    """Flipping x_2 changes s_2, predicted at L + 2: only x_2's stream, the iteration head
    and MLP1 at the predicting position carry the change."""
    model = planted_model()
    pair = make_pair(make_task("parity"), L, 32, seed=0, corruption="flip_one", at=2)
    q = L + 2
    result = patch_sweep(model, pair)
    assert result["query_positions"] == [q]
    expected = {"resid_pre": {(0, 2), (1, 2)}, "head_out": {(1, q, 0)}, "mlp_out": {(1, q)}}
    for kind, sites in expected.items():
        values = torch.tensor(result[kind])
        on = {tuple(i) for i in (values.abs() > 1e-4).nonzero().tolist()}
        assert on == sites, (kind, on)
        assert all(values[s].item() == pytest.approx(1.0, abs=1e-4) for s in sites)


def test_corruptions_change_inputs_and_recompute_answers():
    task = make_task("parity")
    for name in CORRUPTIONS:
        pair = make_pair(task, 6, 16, seed=0, corruption=name, at=3)
        x_clean, x_bad = (b.tokens[:, 1:7] for b in (pair.clean, pair.corrupted))
        assert (x_clean != x_bad).any(1).all()
        assert torch.equal(pair.corrupted.tokens[:, 8:], x_bad.cumsum(1) % 2)  # answers follow the new input
        assert (pair.clean.tokens.gather(1, pair.target[:, None]) != pair.corrupted.tokens.gather(1, pair.target[:, None])).all()
    pair = make_pair(task, 6, 16, seed=0, corruption="flip_one", at=3)
    changed = (pair.clean.tokens != pair.corrupted.tokens)[:, 1:7]
    assert changed[:, 2].all() and changed.sum() == 16
    assert (pair.target == 8 + 2).all()  # s_3, the first answer the flip changes


def test_bad_requests_are_clear_errors():
    with pytest.raises(CompError, match="flip_one"):
        make_pair(make_task("parity"), 4, 4, seed=0, corruption="nope")
    with pytest.raises(CompError, match="1..4"):
        make_pair(make_task("parity"), 4, 4, seed=0, at=5)
