"""Ablations against a planted circuit and against plain TransformerLens hooks; invariants."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from planted import USED, L, planted_model
from transformer_lens import utils

from comp.circuits.ablate import ABLATIONS, ablate_components, ablate_sets
from comp.circuits.components import Component, component_outputs, components
from comp.circuits.data import analysis_groups
from comp.errors import CompError
from comp.evaluation import masked_loss, predictions
from comp.model import ModelConfig, build_model
from comp.model.encodings import ENCODINGS
from comp.tasks import make_task, score


def random_model(encoding: str = "rotary", **kw):
    return build_model(ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32, encoding=encoding, **kw), seed=3).eval()


@pytest.mark.parametrize("method", list(ABLATIONS))
def test_ablations_find_exactly_the_used_components(method):
    groups = analysis_groups(make_task("parity"), [L], 64, seed=0)
    result = ablate_components(planted_model(), groups, method)
    assert result.baseline.acc_cot == 1.0
    hurt = {r.component for r in result.rows if r.acc_cot < 0.9}
    assert hurt == USED
    for r in result.rows:
        if r.component not in USED:  # an unused component changes nothing at all
            assert r.acc_cot == r.acc_answer == 1.0 and r.loss == result.baseline.loss


def _by_hand(model, group, component: Component, method: str) -> dict:
    """One ablation with a plain TransformerLens hook and one forward pass."""
    _, ref = model.run_with_cache(group.reference.tokens, names_filter=component.hook)
    replacement = ABLATIONS[method](ref[component.hook])

    def hook(act, hook):
        if component.head is None:
            return replacement
        act = act.clone()
        act[:, :, component.head] = replacement[:, :, component.head]
        return act

    logits = model.run_with_hooks(group.batch.tokens, fwd_hooks=[(component.hook, hook)])
    s = score(group.batch, predictions(logits, group.batch.tokens))
    return {"acc_cot": s["cot"].float().mean().item(), "acc_answer": s["answer"].float().mean().item(),
            "loss": masked_loss(logits, group.batch, per_row=True).mean().item()}


@pytest.mark.parametrize("method", list(ABLATIONS))
def test_batched_ablation_equals_one_hook_at_a_time(method):
    model = random_model()
    groups = analysis_groups(make_task("parity"), [3], 16, seed=0)
    chosen = components(model)
    batched = ablate_sets(model, groups, [[c] for c in chosen], method)
    for c, got in zip(chosen, batched):
        want = _by_hand(model, groups[0], c, method)
        assert asdict(got) == pytest.approx(want, abs=1e-5), c.label


def test_ablation_methods_replace_as_documented():
    ref = torch.arange(24.0).view(2, 3, 4)  # [B, pos, d]
    assert ABLATIONS["zero"](ref).abs().sum() == 0
    assert torch.equal(ABLATIONS["mean"](ref)[1], ref.mean(0))
    assert torch.equal(ABLATIONS["resample"](ref), ref)


def test_ablating_an_unused_head_changes_nothing():
    """A head whose output matrix is zero: every ablation leaves the logits bit-identical."""
    model = random_model()
    with torch.no_grad():
        model.blocks[1].attn.W_O[1].zero_()
    groups = analysis_groups(make_task("parity"), [2, 4], 16, seed=0)
    for method in ABLATIONS:
        base, ablated = ablate_sets(model, groups, [[], [Component(1, 1)]], method)
        assert base == ablated


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_component_outputs_sum_to_the_residual_stream(encoding):
    for model in (random_model(encoding), random_model(encoding, normalization="none"), planted_model()):
        tokens = analysis_groups(make_task("parity"), [4], 8, seed=0)[0].batch.tokens
        parts = component_outputs(model, tokens)
        final = utils.get_act_name("resid_post", model.cfg.n_layers - 1)
        _, cache = model.run_with_cache(tokens, names_filter=final)
        torch.testing.assert_close(sum(parts.values()), cache[final], atol=1e-5, rtol=1e-5)
        assert {"L0H0", "L1H1", "MLP1", "attn_bias0", "embed"} <= set(parts)


def test_attention_only_models_have_no_mlps_to_ablate():
    model = random_model(attn_only=True)
    assert [c.label for c in components(model, "both")] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    with pytest.raises(CompError, match="attention-only"):
        components(model, "mlps")
