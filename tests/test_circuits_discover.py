"""Circuit discovery: exact on a planted circuit, edge patching equal to plain path patching."""

from __future__ import annotations

import pytest
import torch
from planted import DISCOVERY_EDGES, DISCOVERY_NODES, L, discovery_model

from comp.circuits import edge_patching
from comp.circuits.circuit_eval import EdgeEvaluator, NodeEvaluator
from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.circuits.edge_patching import path_patch_plain, run_edges
from comp.circuits.graph import Graph, Node
from comp.errors import CompError
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


@pytest.fixture(scope="module")
def planted():
    return discovery_model(), analysis_groups(make_task("parity"), [L], 8, seed=0)


def random_model(encoding: str = "rotary", seed: int = 1, dtype: torch.dtype = torch.float64):
    cfg = ModelConfig(n_layers=2, n_heads=2, d_model=16, n_ctx=32, encoding=encoding)
    model = build_model(cfg, seed=seed).eval()
    return model if dtype == torch.float32 else model.to(dtype)


@pytest.mark.parametrize("method", ["exact", "eap"])
@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_discovery_returns_exactly_the_planted_circuit(planted, level, method):
    model, groups = planted
    r = discover(model, groups, level, method)
    assert set(r["nodes"]) == DISCOVERY_NODES
    if level == "edges":
        assert {e["label"] for e in r["edges"]} == DISCOVERY_EDGES
        assert all(e["effect"] > 0.1 for e in r["edges"])  # every planted edge matters on its own
    assert r["circuit"].recovered == pytest.approx(1.0, abs=1e-5)
    assert r["circuit"].acc_answer == r["circuit"].acc_cot == 1.0
    assert r["knocked_out"].recovered < 0.5 and r["n_edges"] < r["n_edges_total"]
    if method == "eap":
        assert r["attribution"].exact_recovered == pytest.approx(1.0, abs=1e-5)


def test_the_split_role_needs_both_heads_and_decoys_do_nothing(planted):
    model, groups = planted
    ev = NodeEvaluator(model, Graph.of(model), groups)
    index = {n.label: i for i, n in enumerate(ev.units)}
    removed = torch.zeros(4, len(ev.units))
    for k, names in enumerate([[], ["L1H0@answer"], ["L1H0@answer", "L1H1@answer"], ["L0H0@eoi", "L0H1@answer", "L1H2@answer"]]):
        for name in names:
            removed[k, index[name]] = 1
    diff = ev.evaluate(removed)[:, 0]  # [4] logit difference
    assert diff[1] < 0.8 * diff[0] and diff[2] < diff[1]  # half the role, then none of it
    assert diff[3] == pytest.approx(float(diff[0]), abs=1e-6)  # sharp attention, nothing written


EARLY = [("embed", "L0H1.q"), ("L0H1", "MLP0")]
LATE = [("L0H0", "L1H1.k"), ("L0H1", "L1H0.v"), ("MLP0", "L1H1.v"), ("L1H0", "MLP1"), ("MLP0", "logits"), ("L1H1", "logits")]


@pytest.mark.parametrize("encoding, picks", [
    ("rotary", EARLY + LATE), ("standard", EARLY + LATE), ("t5", EARLY + LATE),
    ("rotary", LATE), ("standard", LATE), ("t5", LATE), ("t5+coupling", LATE),  # copies fork at layer 1
])
def test_edge_patching_equals_plain_path_patching(encoding, picks):
    model = random_model(encoding)
    group = analysis_groups(make_task("parity"), [3], 6, seed=0)[0]
    graph = Graph.of(model, split_positions=False)
    ev = EdgeEvaluator(model, graph, [group])
    index = {(e.sender, e.receiver): i for i, e in enumerate(ev.units)}
    removed = torch.zeros(len(picks), len(ev.units))
    for k, pick in enumerate(picks):
        removed[k, index[pick]] = 1
    ours = run_edges(model, group.batch.tokens, ev.masks(0, removed), ev.ablated[0], lambda x: x)  # [K, B, pos, V]
    _, clean = model.run_with_cache(group.batch.tokens)
    _, reference = model.run_with_cache(group.reference.tokens)
    for k, (sender, receiver) in enumerate(picks):
        plain = path_patch_plain(model, group.batch.tokens, clean, reference, sender, receiver)
        torch.testing.assert_close(ours[k], plain, atol=1e-5, rtol=0)
        assert (plain - model(group.batch.tokens)).abs().max() > 1e-4  # the edge changed something


def test_copies_forked_at_a_later_layer_equal_full_runs(monkeypatch):
    model = random_model("rotary")
    groups = analysis_groups(make_task("parity"), [3, 4], 6, seed=0)
    ev = EdgeEvaluator(model, Graph.of(model), groups)
    gen = torch.Generator().manual_seed(0)
    removed = (torch.rand(5, len(ev.units), generator=gen) < 0.3).double()
    early = torch.tensor([e.receiver.startswith("L0") or e.receiver == "MLP0" for e in ev.units])
    removed[:, early] = removed[:1, early]  # the same layer-0 edits in every copy: they run once
    assert edge_patching.fork_layer(model, ev.masks(0, removed)) == 1
    forked = ev.evaluate(removed)
    monkeypatch.setattr(edge_patching, "fork_layer", lambda model, masks: 0)
    torch.testing.assert_close(forked, ev.evaluate(removed), atol=1e-6, rtol=0)


def test_path_patching_at_one_position_class():
    model = random_model("standard")
    group = analysis_groups(make_task("parity"), [3], 6, seed=0)[0]
    ev = EdgeEvaluator(model, Graph.of(model), [group])
    i = next(i for i, e in enumerate(ev.units) if e.label == "L0H0@input -> L1H1.v")
    removed = torch.zeros(1, len(ev.units))
    removed[0, i] = 1
    ours = run_edges(model, group.batch.tokens, ev.masks(0, removed), ev.ablated[0], lambda x: x)[0]
    at = torch.tensor([c == "input" for c in ["input"] * 4 + ["eoi"] + ["answer"] * 3])
    caches = [model.run_with_cache(t)[1] for t in (group.batch.tokens, group.reference.tokens)]
    plain = path_patch_plain(model, group.batch.tokens, *caches, "L0H0", "L1H1.v", at)
    torch.testing.assert_close(ours, plain, atol=1e-5, rtol=0)


def test_removing_a_node_equals_removing_all_its_outgoing_edges():
    model = random_model("rotary")
    groups = analysis_groups(make_task("parity"), [3, 4], 6, seed=0)
    graph = Graph.of(model)
    nodes, edges = NodeEvaluator(model, graph, groups), EdgeEvaluator(model, graph, groups)
    sets = [["L0H1@answer"], ["embed@input", "MLP0@eoi"], ["L1H0@answer", "MLP1@answer", "L0H0@input"]]
    by_nodes = torch.zeros(len(sets), len(nodes.units))
    by_edges = torch.zeros(len(sets), len(edges.units))
    for k, labels in enumerate(sets):
        for label in labels:
            by_nodes[k, [n.label for n in nodes.units].index(label)] = 1
            by_edges[k, [Node(e.sender, e.cls).label == label for e in edges.units]] = 1
    torch.testing.assert_close(nodes.evaluate(by_nodes), edges.evaluate(by_edges), atol=1e-5, rtol=0)


def test_attribution_is_the_first_order_effect_of_removing_an_edge():
    model = random_model("rotary")
    group = analysis_groups(make_task("parity"), [3], 6, seed=0)[0]
    ev = EdgeEvaluator(model, Graph.of(model, split_positions=False), [group])
    scores = ev.attribution([0.0])
    eps = 1e-4
    picks = [5, 40, len(ev.units) - 1]
    removed = torch.zeros(len(picks) + 1, len(ev.units), dtype=torch.float64)
    for k, i in enumerate(picks):
        removed[k + 1, i] = eps  # an edge removed by eps: a finite difference
    values = ev.evaluate(removed)[:, 0]
    for k, i in enumerate(picks):
        assert float((values[k + 1] - values[0]) / eps) == pytest.approx(float(scores[i]), rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("kw, match", [
    (dict(level="heads"), "unknown --level"), (dict(method="acdc"), "unknown --method"),
    (dict(target=0.0), "outside"), (dict(target=1.5), "outside"), (dict(ablation="zero"), "unknown --ablation"),
])
def test_bad_options_are_refused(planted, kw, match):
    with pytest.raises(CompError, match=match):
        discover(*planted, **kw)


def test_a_model_that_does_not_solve_its_task_is_refused():
    groups = analysis_groups(make_task("parity"), [L], 8, seed=0)
    with pytest.raises(CompError, match="does not solve"):
        discover(random_model("standard", dtype=torch.float32), groups)
