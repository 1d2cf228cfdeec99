"""``comp circuit`` and ``comp circuit diff`` on the planted discovery circuit; bad input; the picture."""

from __future__ import annotations

import json

import pytest
import torch
from planted import DISCOVERY_EDGES, DISCOVERY_NODES, discovery_model, save_planted_run
from typer.testing import CliRunner

from comp.cli.main import app
from comp.views.browser import find_chromium, render

runner = CliRunner()


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    return save_planted_run(tmp_path_factory.mktemp("circuit") / "planted", discovery=True)


@pytest.fixture(scope="module")
def edges_json(planted_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("circuit-json") / "edges.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(planted_run), "--level", "edges", "--n", "8", "--json", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_circuit_cli_finds_the_planted_edges_and_prints_a_table(edges_json):
    out, printed = edges_json
    data = json.loads(out.read_text())
    assert set(data["nodes"]) == DISCOVERY_NODES
    assert {e["label"] for e in data["edges"]} == DISCOVERY_EDGES
    assert data["circuit"]["recovered"] == pytest.approx(1.0, abs=1e-5) and data["warning"] == ""
    assert "circuit alone (faithfulness)" in printed and "10/330 edges" in printed
    assert "MLP0@input -> L1H0.v" in printed


def test_circuit_diff_reports_shared_edges_and_jaccard(planted_run, edges_json, tmp_path):
    nodes = tmp_path / "nodes.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(planted_run), "--n", "8", "--json", str(nodes)])
    assert res.exit_code == 0, res.output
    diff = tmp_path / "diff.json"
    res = runner.invoke(app, ["circuit", "diff", str(edges_json[0]), str(nodes), "--json", str(diff)])
    assert res.exit_code == 0, res.output
    d = json.loads(diff.read_text())
    assert d["node_jaccard"] == 1.0 and set(d["shared_edges"]) == DISCOVERY_EDGES and not d["only_a_edges"]
    # the node-level circuit holds every edge among its nodes, the planted ones and more
    assert 0 < d["edge_jaccard"] < 1 and d["only_b_edges"]


def test_roles_are_matched_across_circuits(edges_json, tmp_path):
    a = json.loads(edges_json[0].read_text())
    b = json.loads(json.dumps(a).replace("L1H1", "L1H3"))  # the same circuit with another head in the split role
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p, data in zip(paths, (a, b)):
        p.write_text(json.dumps(data))
    res = runner.invoke(app, ["circuit", "diff", *map(str, paths)])
    assert res.exit_code == 0, res.output
    assert "role matched: L1H1@answer (A) ~ L1H3@answer (B), receivers overlap 1.00" in res.output


def test_below_baseline_model_gets_a_warning(planted_run, tmp_path):
    model = discovery_model()
    with torch.no_grad():
        model.blocks[1].attn.W_O[1] = 0  # half the iteration role gone: Z = 1/2 where x_t = 1 ...
        model.unembed.b_U[1] = 0.1  # ... read as 1: wrong where s_{t-1} = 1 too, a quarter of the rows
    weak = save_planted_run(tmp_path / "weak", discovery=True, model=model)
    res = runner.invoke(app, ["circuit", "--ckpt", str(weak), "--n", "64"])
    assert res.exit_code == 0, res.output
    assert "warning: the model's final-answer accuracy" in res.output


@pytest.mark.parametrize("args, message", [
    (["--method", "acdc"], "unknown --method 'acdc'"),
    (["--level", "heads"], "unknown --level"),
    (["--faithfulness", "0"], "outside (0, 1]"),
    (["--faithfulness", "1.5"], "outside (0, 1]"),
    (["--ablation", "zero"], "unknown --ablation"),
    (["--plot", "c.svg"], "should end in .html or .png"),
])
def test_bad_input_is_one_error_line_and_exit_2(planted_run, tmp_path, args, message):
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(planted_run), "--json", str(out), *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert res.output.count("error:") == 1 and "Traceback" not in res.output and not out.exists()


def test_missing_ckpt_and_bad_diff_files_are_errors(tmp_path):
    res = runner.invoke(app, ["circuit"])
    assert res.exit_code == 2 and "give --ckpt RUN" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run": "x"}))
    res = runner.invoke(app, ["circuit", "diff", str(bad), str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "not a comp circuit JSON" in res.output


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium: apt-get install -y --no-install-recommends chromium")
def test_circuit_picture_renders_offline(planted_run, tmp_path):
    page = tmp_path / "c.html"
    res = runner.invoke(app, ["circuit", "--ckpt", str(planted_run), "--level", "edges", "--n", "8", "--plot", str(page)])
    assert res.exit_code == 0, res.output
    dom = render(page, tmp_path / "shot.png", width=1000, height=800)
    assert 'class="main-svg"' in dom and "MLP0@input" in dom and "logits" in dom
    png = tmp_path / "c.png"
    res = runner.invoke(app, ["circuit", "--ckpt", str(planted_run), "--n", "8", "--plot", str(png)])
    assert res.exit_code == 0 and png.stat().st_size > 10_000
