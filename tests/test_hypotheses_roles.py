"""Hypotheses on the planted paper circuit (tests/planted.py: paper_model): groups of heads,
MLP roles, decoys, the layer option, the whole circuit as one hypothesis, one-line verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from planted import (
    PAPER_CONFIG,
    PAPER_DECOYS,
    PAPER_ROLES,
    L,
    discovery_model,
    paper_model,
    planted_model,
    save_planted_run,
)
from typer.testing import CliRunner

from comp.circuits.ablate import ablate_sets
from comp.circuits.components import Component
from comp.circuits.data import analysis_groups
from comp.circuits.hypotheses import (
    HypothesisRequest,
    RoleFinder,
    assess_hypothesis,
    check_sufficiency_ablation,
    component_scores,
)
from comp.circuits.patching import make_pair
from comp.circuits.roles import in_layers, parse_layers
from comp.cli.main import app
from comp.errors import CompError
from comp.tasks import make_task

N = 32


@pytest.fixture(scope="module")
def paper():
    """The paper model, its analysis sets, scores and one role finder (roles are found once)."""
    model = paper_model()
    task = make_task("parity")
    groups = analysis_groups(task, [L], N, seed=0)
    scores = component_scores(model, groups, make_pair(task, L, N, seed=0))
    return model, groups, scores, RoleFinder(model, groups, scores, HypothesisRequest())


def test_the_planted_paper_model_solves_parity_and_its_roles_are_what_the_weights_say(paper):
    model, groups, scores, _ = paper
    acc = ablate_sets(model, groups, [[], [Component(0)], [Component(0, 0)], [Component(0, 1)], [Component(1, 2)]], "zero")
    assert [a.acc_answer for a in acc][:1] == [1.0] and acc[0].acc_cot == 1.0
    assert acc[1].acc_answer < 0.6 and acc[2].acc_answer < 0.6  # no position MLP / no anchor: the bit at position 0
    assert acc[3].loss == pytest.approx(acc[0].loss) and acc[4].loss == pytest.approx(acc[0].loss)  # decoys: W_O = 0
    # the position MLP score: zeroing MLP0 takes all of the iteration heads' attention off x_t
    assert scores["iteration_drop"]["MLP0"] > 0.99 and scores["iteration_drop"]["MLP1"] == 0.0
    assert {k: round(v, 3) for k, v in scores["iteration"].items() if k.startswith("L1H") and v > 0.5} == \
        {"L1H0": 1.0, "L1H1": 1.0, "L1H2": 1.0}  # the decoy attends exactly like the real heads


@pytest.mark.parametrize("name", list(PAPER_ROLES))
def test_each_role_is_found_exactly_and_supported(paper, name):
    model, groups, scores, finder = paper
    r = assess_hypothesis(model, name, groups, scores, finder=finder)
    assert r.components == PAPER_ROLES[name] and not PAPER_DECOYS & set(r.components)
    assert r.verdict == "supported", r.reason
    assert r.necessity.result == "yes" and r.sufficiency.result == "yes"
    assert r.sufficiency.circuit == ["L0H0", "MLP0", "L1H0", "L1H1", "MLP1"]  # every role found, in model order
    assert r.sufficiency.logit_diff_recovered == pytest.approx(1.0, abs=1e-3)
    assert r.reason.startswith("score ") and f"<= chance + 0.1 = {r.chance_answer + 0.1:.3f}" in r.reason


def test_the_split_iteration_head_is_one_group_with_each_members_share(paper):
    model, groups, scores, finder = paper
    r = assess_hypothesis(model, "iteration_head", groups, scores, finder=finder)
    assert [(m.role, m.component) for m in r.members] == [("iteration_head", "L1H0"), ("iteration_head", "L1H1")]
    assert r.score == pytest.approx(2.0, abs=1e-3)  # attention on x_t summed over the group
    for m in r.members:
        assert m.share == pytest.approx(0.5) and m.score == pytest.approx(1.0, abs=1e-3)
        assert m.alone_acc_answer == 1.0 and m.alone_d_loss > 0  # alone, half of the signal still decides
        assert m.left_out_acc_answer == 1.0  # the group without it: not necessary
    assert r.necessity.acc_answer <= r.chance_answer + 0.1  # together: necessary
    assert "L1H2" in r.scores and r.scores["L1H2"] == pytest.approx(r.scores["L1H0"])  # the decoy scored, left out


def test_a_decoy_ranked_first_leaves_the_group_in_pruning():
    model = paper_model()
    with torch.no_grad():
        model.blocks[1].attn.W_Q[2] *= 1.5  # the decoy L1H2 attends even more sharply: first by score
    task = make_task("parity")
    groups = analysis_groups(task, [L], N, seed=0)
    scores = component_scores(model, groups, make_pair(task, L, N, seed=0))
    assert max(scores["iteration"], key=scores["iteration"].get) == "L1H2"
    r = assess_hypothesis(model, "iteration_head", groups, scores)
    assert r.components == ["L1H0", "L1H1"] and r.verdict == "supported", r.reason


def test_the_paper_circuit_is_one_sufficient_hypothesis(paper):
    model, groups, scores, finder = paper
    r = assess_hypothesis(model, "paper_circuit", groups, scores, finder=finder)
    assert r.roles == PAPER_ROLES and r.verdict == "supported", r.reason
    assert r.components == ["L0H0", "MLP0", "L1H0", "L1H1", "MLP1"]
    assert r.sufficiency.ablated == ["L0H1", "L0H2", "L0H3", "L1H2", "L1H3"]
    assert (r.sufficiency.acc_answer, r.sufficiency.acc_cot) == (1.0, 1.0)
    assert r.sufficiency.logit_diff_recovered == pytest.approx(1.0, abs=1e-3)
    resampled = assess_hypothesis(model, "paper_circuit", groups, scores, HypothesisRequest(sufficiency_ablation="resample"))
    assert resampled.verdict == "supported" and resampled.test.sufficiency_ablation == "resample"


def test_verdicts_name_the_failed_test_component_number_and_threshold():
    model = planted_model()  # reads x_t by absolute position: no anchor is used, no position MLP exists
    task = make_task("parity")
    groups = analysis_groups(task, [L], N, seed=0)
    scores = component_scores(model, groups, make_pair(task, L, N, seed=0))
    finder = RoleFinder(model, groups, scores, HypothesisRequest())
    r = assess_hypothesis(model, "position_mlp", groups, scores, finder=finder)
    assert r.verdict == "refuted" and r.reason == "score failed: the best mlp group MLP0 has iteration_drop 0.000 < 0.5"
    r = assess_hypothesis(model, "paper_circuit", groups, scores, finder=finder)
    assert r.verdict == "refuted" and r.reason.startswith("score failed: role position_mlp: the best mlp group MLP0")
    r = assess_hypothesis(model, "eoi_anchor", groups, scores, finder=finder)
    assert r.verdict == "refuted" and r.reason.startswith("necessity failed: zero-ablating L0H0 gives final-answer "
                                                          "accuracy 1.000 >= baseline - 0.05 = 0.950")


def test_a_circuit_missing_a_needed_mlp_fails_sufficiency_and_says_where():
    model = discovery_model()  # the split iteration heads read x_t from MLP0, which copies it (no role names that)
    task = make_task("parity")
    groups = analysis_groups(task, [L], N, seed=0)
    r = assess_hypothesis(model, "iteration_head", groups, component_scores(model, groups, make_pair(task, L, N, seed=0)))
    assert r.components == ["L1H0", "L1H1"] and r.necessity.result == "yes" and r.verdict == "inconclusive"
    assert r.reason.startswith("sufficiency failed: mean-ablating everything outside the circuit (") and "MLP0" in r.reason
    assert f"< baseline - 0.1 = {r.baseline.acc_answer - 0.1:.3f}" in r.reason and "MLP0" not in r.sufficiency.circuit
    assert r.sufficiency.logit_diff_recovered < 0.1


def test_layers_option_finds_the_head_where_asked():
    model = planted_model()
    task = make_task("parity")
    groups = analysis_groups(task, [L], N, seed=0)
    scores = component_scores(model, groups, make_pair(task, L, N, seed=0))
    late = assess_hypothesis(model, "iteration_head", groups, scores, HypothesisRequest(layers="late"))
    paper = assess_hypothesis(model, "iteration_head", groups, scores, HypothesisRequest(layers="paper"))
    assert late.components == paper.components == ["L1H0"] and late.test.layers == "late"
    early = assess_hypothesis(model, "iteration_head", groups, scores, HypothesisRequest(layers=(0,)))
    assert early.test.layers == "0" and all(k.startswith("L0") for k in early.scores)
    assert early.verdict == "refuted" and early.reason.startswith("score failed: the best head group L0H")
    with pytest.raises(CompError, match="layers 0-1"):
        assess_hypothesis(model, "iteration_head", groups, scores, HypothesisRequest(layers=(0, 2)))


def test_layer_choices():
    assert [parse_layers(s) for s in ("any", "paper", "late", "1,0", " 2 ")] == ["any", "paper", "late", (0, 1), (2,)]
    for bad in ("", "top", "1-2", "-1", "0,,1"):
        with pytest.raises(CompError, match="--layers"):
            parse_layers(bad)
    assert [layer for layer in range(3) if in_layers(layer, "paper", "late", 3)] == [1, 2]
    assert [layer for layer in range(3) if in_layers(layer, "early", "late", 3)] == [0, 1]  # the option wins
    assert [layer for layer in range(2) if in_layers(layer, "any", "early", 2)] == [0, 1]
    with pytest.raises(CompError, match="mean, resample"):
        check_sufficiency_ablation("zero")


runner = CliRunner()


@pytest.fixture
def paper_run() -> str:
    save_planted_run(Path(os.environ["COMP_RUNS_DIR"]) / "paper", model=paper_model(), config=PAPER_CONFIG)
    return "paper"


def test_cli_reports_groups_layers_and_the_whole_circuit(paper_run, tmp_path):
    out = tmp_path / "v.json"
    res = runner.invoke(app, ["patch", "--ckpt", paper_run, "--hypothesis", "iteration_head", "--layers", "1",
                              "--n", str(N), "--json", str(out)])
    assert res.exit_code == 0, res.output
    ev = json.loads(out.read_text())["hypotheses"][0]
    assert ev["components"] == ["L1H0", "L1H1"] and ev["test"]["layers"] == "1" and ev["verdict"] == "supported"
    assert [m["component"] for m in ev["members"]] == ["L1H0", "L1H1"]
    assert "iteration_head: supported (score 2.000 >= 0.5" in res.output and "group without it" in res.output
    res = runner.invoke(app, ["patch", "--ckpt", paper_run, "--hypothesis", "paper_circuit", "--ablation", "resample",
                              "--n", str(N), "--json", str(out)])
    assert res.exit_code == 0, res.output
    ev = json.loads(out.read_text())["hypotheses"][0]
    assert ev["roles"] == PAPER_ROLES and ev["verdict"] == "supported" and ev["sufficiency"]["acc_cot"] == 1.0
    assert "logit diff recovered 1.000" in res.output


@pytest.mark.parametrize("args,words", [
    (["--hypothesis", "iteration_head", "--layers", "top"], ["--layers", "any, paper, early, late", "0,1"]),
    (["--hypothesis", "iteration_head", "--layers", "0,7"], ["--layers 0,7", "layers 0-1"]),
    (["--hypothesis", "iteration_head", "--ablation", "zero"], ["--ablation", "mean, resample"]),
    (["--layers", "late"], ["--hypothesis"]),
])
def test_bad_layer_and_ablation_requests_are_one_line(paper_run, tmp_path, args, words):
    out = tmp_path / "x.json"
    res = runner.invoke(app, ["patch", "--ckpt", paper_run, "--n", "8", *args, "--json", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1 and "Traceback" not in res.output
    assert all(w in res.output for w in words), res.output
    assert not out.exists()
