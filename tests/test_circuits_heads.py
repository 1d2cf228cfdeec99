"""Head scores against a planted circuit, and the answer-step bookkeeping they rest on."""

from __future__ import annotations

import pytest
import torch
from planted import PLANTED_HEADS, L, planted_model

from comp.circuits.data import analysis_groups, answer_steps
from comp.circuits.heads import head_scores
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


def test_answer_steps_read_x_t_from_the_position_before_s_t():
    # <parity> x1 x2 x3 EoI s1 s2 s3: s_t at 4 + t, predicted at 3 + t, reading x_t at t
    steps = answer_steps(make_task("parity").make_batch(torch.tensor([[1, 0, 1]]), torch.tensor([3])))
    assert steps.query.tolist() == [[4, 5, 6]] and steps.key.tolist() == [[1, 2, 3]]
    # slack 2: <p> x1 x2 EoI _ _ s1 s2: s_t at 5 + t
    steps = answer_steps(make_task("parity", slack=2).make_batch(torch.tensor([[1, 0]]), torch.tensor([2])))
    assert steps.query.tolist() == [[5, 6]] and steps.key.tolist() == [[1, 2]]
    # no CoT: the one answer s_L, predicted at EoI, reads x_L
    steps = answer_steps(make_task("parity_nocot").make_batch(torch.tensor([[1, 0, 1, 1]]), torch.tensor([4])))
    assert steps.query.tolist() == [[5]] and steps.key.tolist() == [[4]]
    # mixed lengths: steps past a row's answers are invalid
    steps = answer_steps(make_task("copy").make_batch(torch.tensor([[1, 0, 1], [0, 1, 1]]), torch.tensor([3, 1])))
    assert steps.valid.tolist() == [[True, True, True], [True, False, False]]
    assert steps.query[1, 0].item() == 2 and steps.key[1, 0].item() == 1


def test_head_scores_find_exactly_the_planted_heads():
    rows = head_scores(planted_model(), analysis_groups(make_task("parity"), [L], 64, seed=0))
    for score, planted in [("eoi_anchor", PLANTED_HEADS["eoi_anchor"]), ("prev_token", PLANTED_HEADS["prev_token"]),
                           ("iteration", PLANTED_HEADS["iteration"]), ("iteration_frac", PLANTED_HEADS["iteration"])]:
        high = {r["component"] for r in rows if r[score] > 0.5}
        assert high == {planted}, (score, high)
        assert max(r[score] for r in rows) > 0.99


def test_head_scores_are_attention_averages():
    """A head with no attention preference (all scores equal) spreads evenly over the visible keys."""
    model = build_model(ModelConfig(n_layers=1, n_heads=1, d_model=16, n_ctx=32, encoding="nope"), seed=0)
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        model.blocks[0].attn.b_Q.zero_()
    batch_len = 3  # 8 positions; query i sees i + 1 keys
    (row,) = head_scores(model, analysis_groups(make_task("parity"), [batch_len], 8, seed=0))
    uniform = sum(1 / (i + 1) for i in range(1, 8)) / 7
    assert row["prev_token"] == pytest.approx(uniform) and row["bos"] == pytest.approx(uniform)
    assert row["self"] == pytest.approx(uniform)
    # iteration: queries 4, 5, 6 (EoI, s1, s2) see 5, 6, 7 keys
    assert row["iteration"] == pytest.approx((1 / 5 + 1 / 6 + 1 / 7) / 3) and row["iteration_frac"] == 0
    assert row["eoi_anchor"] == pytest.approx((1 / 6 + 1 / 7 + 1 / 8) / 3)  # queries 5, 6, 7 after EoI at 4


@pytest.mark.parametrize("task", ["parity_nocot", "polynomial", "multi"])
def test_head_scores_run_on_every_task(task):
    t = make_task(task, tasks=["parity", "copy", "parity_nocot"] if task == "multi" else None)
    model = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32), seed=0).eval()
    rows = head_scores(model, analysis_groups(t, [1, 3], 4, seed=0))
    assert len(rows) == 4 and all(0 <= r[s] <= 1 for r in rows for s in ("prev_token", "iteration", "eoi_anchor"))
