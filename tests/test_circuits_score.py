"""``comp circuit score``: a found circuit scored again on other sequences (planted circuit)."""

from __future__ import annotations

import json

import pytest
from planted import DISCOVERY_EDGES, L, discovery_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.circuit_score import score_circuit
from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.cli.main import app
from comp.errors import CompError
from comp.tasks import make_task

runner = CliRunner()


@pytest.fixture(scope="module")
def planted():
    return discovery_model(), analysis_groups(make_task("parity"), [L], 8, seed=0)


def as_json(found: dict, run: str = "planted") -> dict:
    """A discover() result as comp circuit --json writes it (Scores as dicts)."""
    return json.loads(json.dumps({**found, "run": run, "lengths": [L]}, default=lambda s: s.__dict__))


@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_scoring_on_the_same_sequences_repeats_what_discovery_measured(planted, level):
    model, groups = planted
    found = discover(model, groups, level, "exact")
    again = score_circuit(model, groups, as_json(found))
    for key in ("model", "circuit", "knocked_out"):
        assert again[key].__dict__ == pytest.approx(found[key].__dict__, abs=1e-9)
    assert again["n_units"] == (found["n_edges"] if level == "edges" else found["n_nodes"] - 1)


def test_the_planted_circuit_is_faithful_on_new_sequences_and_one_edge_less_is_not(planted):
    model, _ = planted
    other = analysis_groups(make_task("parity"), [L], 16, seed=7)  # sequences discovery never saw
    circuit = {"run": "hand", "level": "edges", "nodes": [], "edges": [], "effects": dict.fromkeys(DISCOVERY_EDGES, 0.0)}
    whole = score_circuit(model, other, circuit)
    assert whole["circuit"].recovered == pytest.approx(1.0, abs=1e-5) and whole["circuit"].acc_cot == 1.0
    assert whole["knocked_out"].recovered < 0.5
    cut = dict(circuit, effects=dict.fromkeys(DISCOVERY_EDGES - {"MLP1@answer -> logits"}, 0.0))
    assert score_circuit(model, other, cut)["circuit"].recovered < 0.9


def test_a_circuit_naming_units_the_model_lacks_is_refused(planted):
    model, groups = planted
    circuit = {"run": "x", "level": "nodes", "nodes": [], "edges": [], "effects": {"L7H0@answer": 0.1}}
    with pytest.raises(CompError, match="units this model does not have"):
        score_circuit(model, groups, circuit)


def test_cli_scores_a_saved_circuit_and_refuses_bad_files(tmp_path):
    run = save_planted_run(tmp_path / "planted", discovery=True)
    found = tmp_path / "c.json"
    assert runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--json", str(found)]).exit_code == 0
    out = tmp_path / "s.json"
    res = runner.invoke(app, ["circuit", "score", str(found), "--ckpt", str(run), "--n", "16", "--seed", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["circuit"]["recovered"] == pytest.approx(1.0, abs=1e-5) and data["n_units"] == len(DISCOVERY_EDGES)
    assert data["lengths"] == [L] and "circuit alone (faithfulness)" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run": "x"}))
    res = runner.invoke(app, ["circuit", "score", str(bad), "--ckpt", str(run), "--json", str(out.with_name("t.json"))])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "not a comp circuit JSON" in res.output
    assert not out.with_name("t.json").exists()
