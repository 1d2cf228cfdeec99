"""What a discovered circuit must keep (``--keep``): a component only the chain of thought
needs, the final pass, held-out scoring, bad targets."""

from __future__ import annotations

import json

import pytest
import torch
from planted import COT_EDGES, COT_NODES, DISCOVERY_EDGES, DISCOVERY_NODES, L, cot_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.circuits.pruning import Keep, Pruner, parse_keep
from comp.cli.main import app
from comp.errors import CompError
from comp.tasks import make_task

runner = CliRunner()


@pytest.fixture(scope="module")
def planted():
    return cot_model(), analysis_groups(make_task("parity"), [L], 8, seed=0)


@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_the_logit_target_drops_what_the_chain_needs_and_the_cot_target_keeps_it(planted, level):
    model, groups = planted
    logit = discover(model, groups, level, keep=Keep(logit=0.95))
    assert set(logit["nodes"]) == DISCOVERY_NODES  # L1H3@eoi costs about 2% of the logit difference ...
    assert logit["circuit"].recovered > 0.95 and logit["circuit"].acc_answer == 1.0
    assert logit["circuit"].acc_cot < 0.9 * logit["model"].acc_cot  # ... and every chain with x_1 = 1
    cot = discover(model, groups, level, keep=Keep(logit=0.95, cot=0.9))
    assert set(cot["nodes"]) == COT_NODES
    if level == "edges":
        assert {e["label"] for e in logit["edges"]} == DISCOVERY_EDGES
        assert {e["label"] for e in cot["edges"]} == COT_EDGES
    assert cot["circuit"].acc_cot == cot["model"].acc_cot == 1.0
    assert cot["keep"] == {"logit": 0.95, "answer": None, "cot": 0.9}


@pytest.mark.parametrize("order", ["global", "nodes"])
@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_other_orders_find_the_planted_circuit_too(planted, level, order):
    r = discover(*planted, level, keep=Keep(logit=0.95, cot=0.9), order=order)
    assert set(r["nodes"]) == COT_NODES and r["order"] == order
    if level == "edges":
        assert {e["label"] for e in r["edges"]} == COT_EDGES


def test_the_node_pass_starts_edge_pruning_inside_the_surviving_nodes(planted):
    r = discover(*planted, "edges", keep=Keep(logit=0.95, cot=0.9), order="nodes")
    # the planted decoys go in the node pass: edge pruning starts from the edges among the circuit's nodes
    assert r["node_pass"]["kept_targets"] and r["node_pass"]["nodes"] == len(COT_NODES)
    assert len(COT_EDGES) <= r["node_pass"]["edges"] < r["n_edges_total"]


def test_eap_verified_under_the_cot_target_finds_the_planted_edges(planted):
    r = discover(*planted, "edges", "eap", keep=Keep(logit=0.95, cot=0.9))
    assert {e["label"] for e in r["edges"]} == COT_EDGES and r["circuit"].acc_cot == 1.0


class Toy:
    """Two units in two stages, scored by hand: removing ``late`` costs 0.1 of the logit
    difference while ``early`` is kept, nothing once it is gone; ``early`` costs nothing."""

    units = ["early", "late"]

    def stage(self, unit: str) -> int:
        return {"early": 1, "late": 2}[unit]

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        r = removed.double()
        if r.shape[0] == 2 and bool((r.sum(1) == torch.tensor([0.0, 2.0])).all()):  # full, then all removed
            return torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.5, 0.0]], dtype=torch.float64)
        diff = 1.0 - 0.1 * r[:, 1] * (1 - r[:, 0])
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


def test_the_final_pass_removes_what_became_removable():
    stages_only = Pruner(Toy(), Keep(logit=0.95)).greedy(retry=False)
    assert stages_only.tolist() == [True, False]  # late (first, from the output) could not go while early was there
    pruner = Pruner(Toy(), Keep(logit=0.95))
    assert pruner.greedy().tolist() == [True, True] and pruner.retried == 1


@pytest.mark.parametrize("spec, faithfulness, want", [
    ("", None, Keep(logit=0.95)), ("", 0.8, Keep(logit=0.8)),
    ("answer=0.95,cot=0.9", None, Keep(logit=None, answer=0.95, cot=0.9)),
    ("cot=0.9", 0.9, Keep(logit=0.9, cot=0.9)), (" logit=1, answer=0.5 ", None, Keep(logit=1.0, answer=0.5)),
])
def test_keep_specs(spec, faithfulness, want):
    assert parse_keep(spec, faithfulness) == want


@pytest.mark.parametrize("spec, faithfulness, match", [
    ("acc=0.9", None, "not SHARE=VALUE"), ("cot", None, "not SHARE=VALUE"), ("cot=0", None, "outside"),
    ("answer=1.5", None, "outside"), ("cot=high", None, "not a number"), ("cot=0.9,cot=0.8", None, "twice"),
    ("logit=0.9", 0.9, "given twice"), ("", 0.0, "outside"),
])
def test_bad_keep_specs_are_refused(spec, faithfulness, match):
    with pytest.raises(CompError, match=match):
        parse_keep(spec, faithfulness)


@pytest.fixture(scope="module")
def cot_run(tmp_path_factory):
    return save_planted_run(tmp_path_factory.mktemp("cot") / "cot", discovery=True, model=cot_model())


def test_cli_keeps_the_chain_and_scores_on_a_held_out_batch(cot_run, tmp_path):
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(cot_run), "--level", "edges", "--n", "8",
                              "--keep", "answer=0.95,cot=0.9,logit=0.95", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES
    assert data["keep"] == {"logit": 0.95, "answer": 0.95, "cot": 0.9} and data["holdout_seed"] == data["seed"] + 2
    assert data["scored_on"].startswith("held-out") and data["fit"]["circuit"]["acc_cot"] == 1.0
    assert data["circuit"]["acc_cot"] == 1.0  # the planted circuit is exact on any sequences
    assert "keep logit=0.95,answer=0.95,cot=0.9" in res.output and "held-out batch" in res.output


@pytest.mark.parametrize("args, message", [
    (["--keep", "acc=0.9"], "not SHARE=VALUE"), (["--keep", "cot=0"], "outside (0, 1]"),
    (["--keep", "cot=1.5"], "outside (0, 1]"), (["--order", "random"], "unknown --order 'random'"), (["--keep", "logit=0.9", "--faithfulness", "0.9"], "given twice"),
])
def test_bad_targets_are_one_error_line_and_exit_2(cot_run, tmp_path, args, message):
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(cot_run), "--json", str(out), *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert res.output.count("error:") == 1 and "Traceback" not in res.output and not out.exists()
