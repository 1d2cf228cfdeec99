"""``comp circuit --budget F``: at most a share ``F`` of the units, the least harmful removed
first on both batches, even past the thresholds; a circuit within the budget is left as it is."""

from __future__ import annotations

import json

import pytest
import torch
from planted import COT_EDGES, cot_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.budget import budget_warning, limit, trim
from comp.circuits.pruning import Keep, Pruner
from comp.cli.main import app

runner = CliRunner()


class Additive:
    """Units scored by hand: removing unit ``i`` costs ``costs[i]`` of the logit difference, summed
    (the costs sum to one, so the share recovered is the logit difference itself)."""

    def __init__(self, costs: list[float]):
        self.costs = torch.tensor(costs, dtype=torch.float64)
        self.units = [f"u{i}" for i in range(len(costs))]

    def stage(self, unit: str) -> int:
        return 1

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        diff = 1 - removed.double() @ self.costs  # [K]
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


def test_limit_is_a_floor_of_the_share_and_at_least_one():
    assert limit(0.25, 330) == 82 and limit(0.25, 328) == 82 and limit(0.3, 10) == 3
    assert limit(1.0, 7) == 7 and limit(0.01, 10) == 1


def test_trim_removes_the_least_harmful_first_and_records_each_margin():
    pruner = Pruner(Additive([0.1, 0.2, 0.05, 0.65]), Keep(logit=0.8))
    removed, trims = trim(pruner, torch.zeros(4, dtype=torch.bool), None, 2)
    assert removed.tolist() == [True, False, True, False]
    assert [t.removed for t in trims] == ["u2", "u0"]
    assert [t.margin for t in trims] == pytest.approx([0.95 - 0.8, 0.85 - 0.8])
    assert budget_warning(trims, 2) == ""  # the thresholds still hold
    removed, trims = trim(pruner, torch.zeros(4, dtype=torch.bool), None, 1)
    assert removed.tolist() == [True, True, True, False] and trims[-1].margin == pytest.approx(0.65 - 0.8)
    assert "1 of the 3 units removed" in budget_warning(trims, 1)


def test_trim_takes_the_smaller_margin_of_the_two_batches():
    pruner = Pruner(Additive([0.1, 0.2, 0.05, 0.65]), Keep(logit=0.5))
    check = Pruner(Additive([0.1, 0.2, 0.5, 0.2]), Keep(logit=0.5))  # u2 is costly on the validation batch
    removed, trims = trim(pruner, torch.zeros(4, dtype=torch.bool), check, 3)
    assert [t.removed for t in trims] == ["u0"] and trims[0].margin == pytest.approx(0.9 - 0.5)


def test_a_circuit_within_the_budget_is_left_as_it_is():
    pruner = Pruner(Additive([0.1, 0.2, 0.05, 0.65]), Keep(logit=0.8))
    start = torch.tensor([True, False, False, True])
    removed, trims = trim(pruner, start, None, 2)
    assert torch.equal(removed, start) and trims == []


def _discover(run, out, *extra):
    return runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--keep",
                               "logit=0.95,cot=0.9", "--order", "nodes", "--swap", *extra, "--json", str(out)])


def test_cli_budget_keeps_the_planted_circuit_within_it_and_trims_below_it(tmp_path):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    res = _discover(run, tmp_path / "all.json", "--budget", "1")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "all.json").read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES and data["budget_trims"] == [] and data["budget"] == 1
    res = runner.invoke(app, ["circuit", "score", str(tmp_path / "all.json"), "--n", "8", "--seed", str(data["holdout_seed"]),
                              "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output  # no --ckpt: the run directory the circuit was found on (its JSON's ckpt)
    assert json.loads((tmp_path / "s.json").read_text())["circuit"] == pytest.approx(data["circuit"])  # its held-out scores
    most = limit(0.03, data["n_edges_total"])
    assert most < len(COT_EDGES)
    res = _discover(run, tmp_path / "small.json", "--budget", "0.03")
    assert res.exit_code == 0, res.output
    small = json.loads((tmp_path / "small.json").read_text())
    kept = {e["label"] for e in small["edges"]}
    assert small["n_edges"] == most and kept < COT_EDGES  # a subset of the planted circuit, of the budget's size
    assert sorted(t["removed"] for t in small["budget_trims"]) == sorted(COT_EDGES - kept)
    assert "--budget" in small["warning"]  # the planted circuit is minimal: any removal misses a threshold


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_cli_refuses_a_budget_outside_0_1(tmp_path, value):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--n", "8", "--budget", value, "--json", str(out)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "budget" in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()
