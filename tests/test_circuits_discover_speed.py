"""Discovery's shortcuts give the scores of the plain way: each repeated sequence run once,
weighted (:func:`comp.circuits.circuit_eval.distinct_rows`); copies that start after an
attention layer run once (:mod:`comp.circuits.mid_layer`)."""

from __future__ import annotations

import pytest
import torch

from comp.circuits import circuit_eval, mid_layer
from comp.circuits.circuit_eval import EdgeEvaluator, NodeEvaluator, distinct_rows
from comp.circuits.data import analysis_groups
from comp.circuits.graph import Graph
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


def test_distinct_rows_keep_each_sequence_once_with_its_count():
    group = analysis_groups(make_task("parity"), [2], 40, seed=0)[0]  # 4 inputs of length 2: many repeats
    kept, counts = distinct_rows(group)
    tokens = kept.batch.tokens
    assert len(tokens) == 4 and int(counts.sum()) == 40
    assert len(torch.unique(tokens, dim=0)) == len(tokens)
    for row, count in zip(tokens, counts):
        assert int((group.batch.tokens == row).all(1).sum()) == int(count)
    long = analysis_groups(make_task("parity"), [12], 8, seed=0)[0]  # 4096 inputs: 8 distinct rows, in order
    same, ones = distinct_rows(long)
    assert torch.equal(same.batch.tokens, long.batch.tokens) and (ones == 1).all()


@pytest.mark.parametrize("evaluator", [NodeEvaluator, EdgeEvaluator])
def test_weighted_distinct_rows_score_like_every_row(evaluator, monkeypatch):
    model = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32), seed=1).to(torch.float64).eval()
    groups = analysis_groups(make_task("parity"), [1, 2, 3, 5], 24, seed=0)
    graph = Graph.of(model)
    fast = evaluator(model, graph, groups, "mean")
    assert sum(len(g.batch.tokens) for g in fast.groups) < sum(len(g.batch.tokens) for g in groups)
    monkeypatch.setattr(circuit_eval, "distinct_rows", lambda g: (g, None))
    every = evaluator(model, graph, groups, "mean")
    removed = (torch.rand(6, len(fast.units), generator=torch.Generator().manual_seed(0)) < 0.3).double()
    torch.testing.assert_close(fast.evaluate(removed), every.evaluate(removed), atol=1e-9, rtol=1e-9)
    if evaluator is EdgeEvaluator:  # attribution: gradients of the weighted sums
        torch.testing.assert_close(fast.attribution([0.0]), every.attribution([0.0]), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("settings", [{}, {"encoding": "t5+coupling", "attn_scale": "logn"}, {"encoding": "alibi"},
                                      {"encoding": "standard", "n_layers": 3}, {"attn_only": True},
                                      {"encoding": "shortformer"}])
def test_copies_started_after_an_attention_layer_score_like_whole_runs(settings, monkeypatch):
    cfg = ModelConfig(**{"n_layers": 2, "n_heads": 2, "d_model": 16, "n_ctx": 32, **settings})
    model = build_model(cfg, seed=2).to(torch.float64).eval()
    groups = analysis_groups(make_task("parity"), [3, 6], 8, seed=0)
    ev = NodeEvaluator(model, Graph.of(model), groups, "mean")
    stages = torch.tensor([ev.stage(u) for u in ev.units])
    gen = torch.Generator().manual_seed(0)
    cases = []
    for st in stages.unique().tolist():  # copies differing at one stage, on top of a shared removal
        shared = (torch.rand(len(ev.units), generator=gen) < 0.3) & (stages > st)
        removed = shared.repeat(5, 1)
        removed[:, stages == st] = torch.rand(5, int((stages == st).sum()), generator=gen) < 0.5
        cases.append(removed.double())
    calls = []

    def counted(*args, **kw):
        calls.append(args[4])  # the layer copies start after
        return mid_layer.run_after_attention(*args, **kw)

    monkeypatch.setattr(circuit_eval, "run_after_attention", counted)
    fast = [ev.evaluate(r) for r in cases]
    assert set(calls) == (set() if model.cfg.positional_embedding_type == "shortformer" else set(range(cfg.n_layers)))
    monkeypatch.setattr(circuit_eval, "start_layer", lambda model, masks: None)
    for removed, got in zip(cases, fast):
        torch.testing.assert_close(got, ev.evaluate(removed), atol=1e-9, rtol=1e-9)


def test_start_layer_is_the_first_layer_whose_edits_differ():
    model = build_model(ModelConfig(n_layers=3, n_heads=2, d_model=16, n_ctx=32), seed=2).eval()
    same, differ = torch.ones(2, 5, 1, dtype=torch.bool), torch.tensor([[[True]] * 5, [[False]] * 5])
    z = lambda layer: f"blocks.{layer}.attn.hook_z"  # noqa: E731
    assert mid_layer.start_layer(model, {"blocks.0.hook_resid_pre": same, z(1): differ, z(2): differ}) == 1
    assert mid_layer.start_layer(model, {"blocks.0.hook_resid_pre": differ, z(1): differ}) is None  # embed differs
    assert mid_layer.start_layer(model, {"blocks.1.hook_mlp_out": differ}) == 1
    assert mid_layer.start_layer(model, {z(1): same}) is None  # nothing differs
