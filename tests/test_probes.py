"""Probes: sites and labels by hand, planted signals found, random activations at chance, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from comp.cli.main import app
from comp.errors import CompError
from comp.model import ModelConfig, build_model
from comp.probes import control_labels, find_sites, probe_model, probe_score, residual_activations, residual_points
from comp.tasks import make_task

runner = CliRunner()


def one(task_name: str, x: list[int], **kw):
    task = make_task(task_name, **kw)
    return task, task.make_batch(torch.tensor([x]), torch.tensor([len(x)]))


def columns(sites, names=("pos", "step", "s_prev", "x_t", "s_t")) -> dict:
    return {n: getattr(sites, n).tolist() for n in names}


def test_sites_of_parity_with_cot_by_hand():
    # <parity> 1 0 1 1 EoI 1 1 0 1   (positions 0..9)
    task, batch = one("parity", [1, 0, 1, 1])
    assert columns(find_sites(task, batch, "input")) == {
        "pos": [1, 2, 3, 4], "step": [1, 2, 3, 4], "s_prev": [-1, 1, 1, 0], "x_t": [1, 0, 1, 1], "s_t": [1, 1, 0, 1]}
    assert columns(find_sites(task, batch, "eoi")) == {"pos": [5], "step": [1], "s_prev": [-1], "x_t": [1], "s_t": [1]}
    # the position holding s_{t-1} predicts s_t: its token is s_prev, x_t must be fetched, s_t is next
    answer = find_sites(task, batch, "answer")
    assert columns(answer) == {"pos": [6, 7, 8], "step": [2, 3, 4], "s_prev": [1, 1, 0], "x_t": [0, 1, 1], "s_t": [1, 0, 1]}
    assert answer.token.tolist() == answer.s_prev.tolist()
    assert batch.tokens[0, answer.pos + 1].tolist() == answer.s_t.tolist()


def test_sites_without_cot_and_with_slack():
    # <parity_nocot> 1 0 1 1 EoI _ _ 1: the last slack token predicts s_4
    task, batch = one("parity_nocot", [1, 0, 1, 1], slack=2)
    assert columns(find_sites(task, batch, "answer")) == {"pos": [7], "step": [4], "s_prev": [0], "x_t": [1], "s_t": [1]}
    task, batch = one("parity_nocot", [1, 0, 1, 1])  # no slack: EoI predicts the answer; the class is empty
    assert len(find_sites(task, batch, "answer")) == 0


def test_sites_of_a_mixture_use_each_members_states():
    task = make_task("multi", tasks=["parity", "polynomial"])
    batch = task.sample(torch.Generator().manual_seed(0), "2-5", 16)
    sites = find_sites(task, batch, "answer")
    # under CoT the token after an answer site is s_t, whatever the member task
    assert torch.equal(batch.tokens[sites.row, sites.pos + 1], sites.s_t)
    assert set(sites.task.tolist()) == {16, 19}


def test_planted_direction_found_and_random_activations_at_chance():
    gen = torch.Generator().manual_seed(0)
    n, d = 2000, 32
    y = torch.randint(0, 2, (2 * n,), generator=gen)
    noise = torch.randn(2 * n, d, generator=gen)
    direction = torch.randn(d, generator=gen)
    planted = noise + torch.outer(2.0 * y - 1, direction) * 0.5
    score = probe_score(planted[:n], y[:n], planted[n:], y[n:])
    assert score.acc > 0.95 and score.n_classes == 2
    chance = probe_score(noise[:n], y[:n], noise[n:], y[n:])  # labels independent of the activations
    assert abs(chance.acc - chance.chance) < 0.05


def test_control_labels_are_a_fixed_function_of_the_site_type():
    gen = torch.Generator().manual_seed(0)
    types = torch.randint(0, 5, (400, 2), generator=gen)
    y = torch.randint(0, 3, (200,), generator=gen)
    a_train, a_test = control_labels(types[:200], types[200:], y, torch.Generator().manual_seed(1))
    b_train, _ = control_labels(types[:200], types[200:], y, torch.Generator().manual_seed(1))
    assert torch.equal(a_train, b_train)
    labels = torch.cat([a_train, a_test])
    for t in torch.unique(types, dim=0):
        same = (types == t).all(1)
        assert labels[same].unique().numel() == 1
    assert set(labels.tolist()) <= set(y.tolist())
    # two types, balanced binary labels: never a constant map (here it can only be a renaming)
    two = torch.tensor([[0], [1]]).repeat(50, 1)
    for seed in range(5):
        c, _ = control_labels(two, two, two[:, 0], torch.Generator().manual_seed(seed))
        assert sorted(set(c.tolist())) == [0, 1]
    # the label and one more bit: four types, and the control is never a renaming of the label
    four = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(25, 1)
    for seed in range(20):
        c, _ = control_labels(four, four, four[:, 0], torch.Generator().manual_seed(seed))
        assert not (torch.equal(c, four[:, 0]) or torch.equal(c, 1 - four[:, 0]))


def test_residual_points_are_distinct_and_cover_the_stream():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    points = residual_points(model)
    assert [label for label, _ in points] == ["resid_pre 0", "resid_mid 0", "resid_pre 1", "resid_mid 1", "resid_post 1"]
    tokens = make_task("parity").sample(torch.Generator().manual_seed(0), 4, 3).tokens
    _, cache = model.run_with_cache(tokens)
    acts = residual_activations(model, tokens, [h for _, h in points], batch_size=2)
    for _, hook in points:
        torch.testing.assert_close(acts[hook], cache[hook])
    # resid_post of block 0 is resid_pre of block 1: listed once
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], cache["blocks.1.hook_resid_pre"])
    attn_only = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64, attn_only=True), seed=0)
    assert [label for label, _ in residual_points(attn_only)] == ["resid_pre 0", "resid_pre 1", "resid_post 1"]


def cell(result: dict, layer: str, position: str) -> dict:
    return next(r for r in result["rows"] if r["layer"] == layer and r["position"] == position)


def test_token_identity_is_found_in_the_embeddings_and_the_next_input_is_not():
    """At resid_pre 0 a rotary model holds only the token: at an answer site that is s_{t-1},
    while x_t (not yet read) is independent of it."""
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    result = probe_model(model, make_task("parity"), "s_prev", "2-6", n_train=200, n_test=200)
    assert cell(result, "resid_pre 0", "answer")["acc"] == 1.0
    assert cell(result, "resid_pre 0", "eoi")["acc"] is None  # s_prev is undefined at step 1
    result = probe_model(model, make_task("parity"), "x_t", "2-6", n_train=200, n_test=200)
    row = cell(result, "resid_pre 0", "answer")
    assert abs(row["acc"] - row["chance"]) < 0.08


def test_direction_written_into_the_residual_stream_is_found_where_it_was_written():
    """A hook writes the next token (s_t at answer sites) along one direction into
    blocks.1.hook_resid_mid: the probe finds s_t there and after, not before."""
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    direction = torch.randn(32, generator=torch.Generator().manual_seed(3))
    seen = {}

    def remember_tokens(module, args):
        seen["tokens"] = args[0]

    def write_next_token(resid, hook):  # resid: [batch, pos, d_model]
        nxt = torch.roll(seen["tokens"], -1, dims=1)  # the token each position predicts
        return resid + 3.0 * (nxt == 1).float()[..., None] * direction

    handle = model.register_forward_pre_hook(remember_tokens)
    model.add_perma_hook("blocks.1.hook_resid_mid", write_next_token)
    try:
        result = probe_model(model, make_task("parity"), "s_t", "2-6", n_train=200, n_test=200)
    finally:
        handle.remove()
        model.reset_hooks(including_permanent=True)
    for layer in ("resid_mid 1", "resid_post 1"):
        assert cell(result, layer, "answer")["acc"] > 0.98, layer
        assert cell(result, layer, "answer")["selectivity"] > 0.2
    for layer in ("resid_pre 0", "resid_mid 0", "resid_pre 1"):
        assert cell(result, layer, "answer")["acc"] < 0.85, layer


def test_probe_checks_its_target():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0)
    with pytest.raises(CompError, match="unknown probe target"):
        probe_model(model, make_task("parity"), "s_next", "1-4")
    with pytest.raises(CompError, match="multi-task"):
        probe_model(model, make_task("parity"), "task", "1-4")
    mixed = probe_model(model, make_task("multi", tasks=["parity", "copy"]), "task", "1-4", n_train=32, n_test=32)
    assert {r["n_classes"] for r in mixed["rows"]} == {2}


def test_probe_is_deterministic():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    a = probe_model(model, make_task("copy"), "x_t", "1-4", n_train=48, n_test=48, steps=50)
    b = probe_model(model, make_task("copy"), "x_t", "1-4", n_train=48, n_test=48, steps=50)
    assert a == b


def test_probe_cli_table_json_plot_and_errors(tmp_path, trained_run):
    out, plot = tmp_path / "p.json", tmp_path / "p.html"
    res = runner.invoke(app, ["probe", "--ckpt", str(trained_run), "--target", "s_t", "--n-train", "64",
                              "--n-test", "64", "--json", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert "select" in res.output and "resid_post 1" in res.output
    data = json.loads(out.read_text())
    assert data["lengths"] == "1-4" and data["target"] == "s_t"
    assert len(data["rows"]) == len(data["layers"]) * 3
    assert "plotly" in plot.read_text()[:100000]
    res = runner.invoke(app, ["probe", "--ckpt", str(trained_run), "--target", "nope"])
    assert res.exit_code == 2 and "unknown probe target" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["probe", "--ckpt", str(trained_run), "--target", "s_t", "--plot", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and ".html" in res.output
