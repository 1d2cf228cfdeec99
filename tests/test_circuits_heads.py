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
        high = {r.component for r in rows if getattr(r, score) > 0.5}
        assert high == {planted}, (score, high)
        assert max(getattr(r, score) for r in rows) > 0.99


def test_head_scores_are_attention_averages():
    """A head with no attention preference (all scores equal) spreads evenly over the visible keys."""
    model = build_model(ModelConfig(n_layers=1, n_heads=1, d_model=16, n_ctx=32, encoding="nope"), seed=0)
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        model.blocks[0].attn.b_Q.zero_()
    batch_len = 3  # 8 positions; query i sees i + 1 keys
    (row,) = head_scores(model, analysis_groups(make_task("parity"), [batch_len], 8, seed=0))
    uniform = sum(1 / (i + 1) for i in range(1, 8)) / 7
    assert row.prev_token == pytest.approx(uniform) and row.bos == pytest.approx(uniform)
    assert row.self == pytest.approx(uniform)
    # iteration: queries 4, 5, 6 (EoI, s1, s2) see 5, 6, 7 keys
    assert row.iteration == pytest.approx((1 / 5 + 1 / 6 + 1 / 7) / 3) and row.iteration_frac == 0
    assert row.eoi_anchor == pytest.approx((1 / 6 + 1 / 7 + 1 / 8) / 3)  # queries 5, 6, 7 after EoI at 4


@pytest.mark.parametrize("task", ["parity_nocot", "polynomial", "multi"])
def test_head_scores_run_on_every_task(task):
    t = make_task(task, tasks=["parity", "copy", "parity_nocot"] if task == "multi" else None)
    model = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32), seed=0).eval()
    rows = head_scores(model, analysis_groups(t, [1, 3], 4, seed=0))
    assert len(rows) == 4 and all(0 <= getattr(r, s) <= 1 for r in rows for s in ("prev_token", "iteration", "eoi_anchor"))


def forced_patterns(n_pos: int) -> torch.Tensor:
    """[head, q, k] one-hot patterns of parity at length 3 (``<p> x1 x2 x3 EoI s1 s2 s3``, EoI at 4):
    head 0 reads the previous token, head 1 reads EoI from after it, head 2 is an iteration head
    (the position predicting s_t, 3 + t, reads x_t at t); every other query reads itself."""
    target = torch.arange(n_pos).repeat(3, 1)  # [head, q]: each query's one key
    target[0, 1:] = torch.arange(n_pos - 1)
    target[1, 5:] = 4
    target[2, 4:7] = torch.tensor([1, 2, 3])
    return torch.nn.functional.one_hot(target, n_pos).float()


def test_planted_heads_get_their_exact_scores():
    """Patterns forced by a hook on hook_pattern: every score is a known fraction of the 7 queries
    after BOS, the 3 after EoI, or the 3 predicting positions."""
    model = build_model(ModelConfig(n_layers=1, n_heads=3, d_model=12, n_ctx=16, encoding="nope"), seed=0)
    model.blocks[0].attn.hook_pattern.add_hook(lambda pattern, hook: forced_patterns(8).expand_as(pattern).clone())
    rows = head_scores(model, analysis_groups(make_task("parity"), [3], 8, seed=0))
    model.reset_hooks()
    want = {  # head: prev_token, iteration, iteration_frac, eoi_anchor, bos, self
        "L0H0": (1, 0, 0, 1 / 3, 1 / 7, 0),  # x1 reads BOS; s1 reads EoI
        "L0H1": (1 / 7, 0, 0, 1, 0, 4 / 7),  # s1 reads EoI, its previous token; x1..EoI read themselves
        "L0H2": (0, 1, 1, 0, 0, 4 / 7),  # x1, x2, x3 and s3 read themselves
    }
    assert [r.component for r in rows] == list(want)
    for r in rows:
        got = (r.prev_token, r.iteration, r.iteration_frac, r.eoi_anchor, r.bos, r.self)
        assert got == pytest.approx(want[r.component], abs=1e-6), r.component
