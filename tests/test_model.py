"""Model building: every encoding builds a HookedTransformer with TransformerLens hook names."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, utils

from comp.errors import CompError
from comp.model import ModelConfig, build_model, max_length, with_context
from comp.model.encodings import ENCODINGS
from comp.tasks import make_task

COMBINATIONS = ["rotary+coupling+randomized", "t5+coupling", "alibi+coupling", "prevpos+coupling",
                "sinusoidal+randomized", "standard+coupling+abacus", "shortformer+randomized", "t5+randomized"]


@pytest.mark.parametrize("pe", [*ENCODINGS, *COMBINATIONS])
def test_every_encoding_builds_with_tl_hook_names(pe):
    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64))
    assert isinstance(model, HookedTransformer)
    batch = make_task("parity").sample(torch.Generator().manual_seed(0), "1-6", 4)
    logits, cache = model.run_with_cache(batch.tokens)
    assert logits.shape == (4, batch.tokens.shape[1], 32)
    for layer in range(2):
        for name in ("pattern", "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z"):
            assert utils.get_act_name(name, layer) in cache
    assert cache["pattern", 0].shape == (4, 2, batch.tokens.shape[1], batch.tokens.shape[1])


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(ModelConfig(d_model=32, n_heads=2), seed=5)
    after = torch.rand(1)
    b = build_model(ModelConfig(d_model=32, n_heads=2), seed=5)
    c = build_model(ModelConfig(d_model=32, n_heads=2), seed=6)
    assert torch.equal(before, after)
    pa, pb, pc = (dict(m.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)


def test_nope_has_no_position_parameters():
    names = [n for n, _ in build_model(ModelConfig(encoding="nope", d_model=32, n_heads=2)).named_parameters()]
    assert not any("pos" in n for n in names)
    assert any("W_pos" in n for n, _ in build_model(ModelConfig(encoding="standard", d_model=32, n_heads=2)).named_parameters())


def test_learned_positions_cannot_extend_past_n_ctx():
    cfg = ModelConfig(encoding="standard", d_model=32, n_heads=2, n_ctx=40)
    with pytest.raises(CompError, match="n_ctx=40"):
        max_length(cfg, 41)
    rope = ModelConfig(encoding="rotary", d_model=32, n_heads=2, n_ctx=40)
    assert with_context(rope, 100).n_ctx == 100


def test_bad_model_settings():
    with pytest.raises(CompError, match="unknown positional encoding 'ropee'"):
        ModelConfig(encoding="ropee")
    with pytest.raises(CompError, match="divisible"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(CompError, match="unknown model config keys"):
        ModelConfig.from_dict({"d_modle": 3})
    assert ModelConfig(encoding="rope").encoding == "rotary"
