"""Discovery runs each repeated sequence once, weighted: the same scores as every row run."""

from __future__ import annotations

import pytest
import torch

from comp.circuits import circuit_eval
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
