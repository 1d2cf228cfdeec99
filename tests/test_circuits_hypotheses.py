"""Hypothesis verdicts on the planted circuit, and the heads / ablate / patch commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from planted import L, planted_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.heads import SCORES
from comp.circuits.hypotheses import HYPOTHESES, Thresholds, assess_hypothesis, component_scores
from comp.circuits.patching import make_pair
from comp.circuits.results import Evidence
from comp.cli.main import app
from comp.tasks import make_task

runner = CliRunner()


@pytest.fixture
def planted_run() -> str:
    save_planted_run(Path(os.environ["COMP_RUNS_DIR"]) / "planted")
    return "planted"


def invoke(*args):
    return runner.invoke(app, list(args))


def assess(model, name: str) -> Evidence:
    task = make_task("parity")
    groups = analysis_groups(task, [L], 64, seed=0)
    return assess_hypothesis(model, name, groups, component_scores(model, groups, make_pair(task, L, 64, seed=0)))


@pytest.mark.parametrize("name,components,verdict,necessity", [
    ("iteration_head", ["L1H0"], "supported", "yes"),
    ("parity_accumulator", ["MLP1"], "supported", "yes"),
    ("prev_token", ["L0H1"], "refuted", "no"),  # a perfect previous-token head the computation never reads
    ("eoi_anchor", ["L0H0"], "refuted", "no"),
])
def test_planted_verdicts(name, components, verdict, necessity):
    r = assess(planted_model(), name)
    assert r.components == components and r.score > 0.99
    assert r.verdict == verdict and r.necessity.result == necessity
    assert r.sufficiency.circuit == ["L0H0", "L0H1", "L1H0", "MLP1"]
    assert r.sufficiency.ablated == ["MLP0", "L1H1"] and r.sufficiency.result == "yes"
    assert r.thresholds == Thresholds().__dict__


def test_a_model_that_fails_the_task_gets_no_verdict():
    model = planted_model()
    model.unembed.W_U.data.neg_()  # always the wrong bit
    r = assess(model, "iteration_head")
    assert r.verdict == "inconclusive" and "accuracy" in r.reason


def test_heads_ablate_patch_commands(planted_run, tmp_path):
    res = invoke("heads", "--ckpt", planted_run, "--n", "32", "--json", str(tmp_path / "h.json"))
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "h.json").read_text())["rows"]
    assert max(rows, key=lambda r: r["iteration"])["component"] == "L1H0"
    printed = [[c.strip() for c in line.strip().strip("│").split("│")] for line in res.output.splitlines() if "│ L" in line]
    assert printed == [[r["component"], *(f"{r[s]:.3f}" for s in SCORES)] for r in rows]  # the table is the JSON
    res = invoke("ablate", "--ckpt", planted_run, "--method", "resample", "--what", "heads", "--n", "32",
                 "--json", str(tmp_path / "a.json"))
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "a.json").read_text())
    assert [r["component"] for r in data["rows"]] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    assert "baseline" in res.output and data["baseline"]["acc_cot"] == 1.0
    res = invoke("patch", "--ckpt", planted_run, "--at", "3", "--n", "16", "--json", str(tmp_path / "p.json"),
                 "--plot", str(tmp_path / "p.html"))
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["positions"][3] == "x3" and data["head_out"][1][L + 3][0] == pytest.approx(1.0, abs=1e-4)
    assert "L1H0" in res.output and "include" not in res.output
    html = (tmp_path / "p.html").read_text()
    assert "plotly" in html[:300000] and "<script src=" not in html  # plotly.js inlined, no CDN
    res = invoke("patch", "--ckpt", planted_run, "--hypothesis", "iteration_head", "--n", "32",
                 "--json", str(tmp_path / "v.json"))
    assert res.exit_code == 0, res.output
    assert "iteration_head: supported" in res.output and "chance + 0.1" in res.output
    assert [h["verdict"] for h in json.loads((tmp_path / "v.json").read_text())["hypotheses"]] == ["supported"]
    res = invoke("patch", "--ckpt", planted_run, "--hypothesis", "all", "--n", "32", "--json", str(tmp_path / "v.json"))
    assert res.exit_code == 0, res.output
    verdicts = {h["hypothesis"]: h["verdict"] for h in json.loads((tmp_path / "v.json").read_text())["hypotheses"]}
    assert verdicts == {"prev_token": "refuted", "iteration_head": "supported", "eoi_anchor": "refuted",
                        "position_mlp": "refuted", "parity_accumulator": "supported", "paper_circuit": "refuted"}


@pytest.mark.parametrize("args,words", [
    (["patch", "--hypothesis", "copy_head"], [*HYPOTHESES, "all"]),
    (["patch", "--corruption", "shuffle"], ["flip_one", "resample_input"]),
    (["ablate", "--method", "noise"], ["zero", "mean", "resample"]),
    (["ablate", "--what", "neurons"], ["heads", "mlps", "both"]),
    (["heads", "--lengths", "4-2"], ["inverted"]),
    (["patch", "--at", "9"], ["1..4"]),
])
def test_bad_requests_are_one_line_and_exit_2(planted_run, tmp_path, args, words):
    out = tmp_path / "x.json"
    res = invoke(*args[:1], "--ckpt", planted_run, *args[1:], "--json", str(out))
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1 and "Traceback" not in res.output
    assert all(w in res.output for w in words), res.output
    assert not out.exists()


def test_help_shows_choices_and_defaults():
    for cmd, words in [("heads", ["--lengths", "--json", "12345"]), ("ablate", ["zero", "resample", "default: mean"]),
                       ("patch", ["flip_one", "resample_input", "iteration_head", ".png", "default: flip_one"])]:
        res = invoke(cmd, "--help")
        assert res.exit_code == 0 and all(w in res.output for w in words), (cmd, res.output)


def test_min_score_sets_the_score_threshold(planted_run, tmp_path):
    out = tmp_path / "v.json"
    res = invoke("patch", "--ckpt", planted_run, "--hypothesis", "iteration_head", "--min-score", "1.0", "--n", "16",
                 "--json", str(out))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    score = data["hypotheses"][0]["score"]
    assert data["thresholds"]["score"] == 1.0 and "score >= 1.0" in res.output
    assert score == 1.0 and data["hypotheses"][0]["verdict"] != "refuted"  # the planted head meets even 1.0
    res = invoke("patch", "--ckpt", planted_run, "--hypothesis", "iteration_head", "--min-score", "1.5")
    assert res.exit_code == 2 and "--min-score" in res.output  # scores are attention weights, in [0, 1]
