"""The swap pass (``comp circuit --swap``): a circuit greedy pruning cannot shrink by single
removals shrinks by two-out-one-in moves; on the planted model it keeps exactly the planted circuit."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from planted import COT_EDGES, COT_NODES, L, cot_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.circuits.pruning import Keep, Pruner
from comp.circuits.swap import best_moves, repair, swap_pass
from comp.cli.main import app
from comp.tasks import make_task

runner = CliRunner()


class Redundant:
    """Three units, one stage, scored by hand: the task is done by ``c`` alone or by ``a`` and
    ``b`` together. Removing ``c`` costs nothing while ``a`` and ``b`` are kept, each of them
    0.01 of the logit difference: greedy pruning removes ``c`` first and is then stuck at
    ``{a, b}``, from which neither can go; the smallest circuit is ``{c}``."""

    units = ["a", "b", "c"]

    def stage(self, unit: str) -> int:
        return 1

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        a, b, c = (removed.double()[:, k] for k in range(3))
        with_c = 1 - 0.01 * (a + b)
        without_c = torch.where((a + b) == 0, 1.0, 0.5)
        diff = torch.where(c == 0, with_c, without_c)
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


def test_greedy_stops_at_a_pair_and_the_swap_pass_finds_the_single_unit():
    pruner = Pruner(Redundant(), Keep(logit=0.95))
    greedy = pruner.greedy()
    assert greedy.tolist() == [False, False, True]  # {a, b} kept: 1-minimal, not minimal
    removed, moves = swap_pass(pruner, greedy)
    assert removed.tolist() == [True, True, False]  # {c}
    assert len(moves) == 1 and sorted(moves[0].removed) == ["a", "b"] and moves[0].added == "c"
    assert moves[0].margin == pytest.approx(0.96 - 0.95)


def test_the_swap_pass_stops_where_no_move_keeps_the_targets():
    pruner = Pruner(Redundant(), Keep(logit=0.99))  # {c} alone (0.96) is too little now
    greedy = pruner.greedy()
    removed, moves = swap_pass(pruner, greedy)
    assert removed.tolist() == greedy.tolist() and moves == []


class NeedsC(Redundant):
    """A validation batch on which ``c`` is needed whatever else is kept (``a`` and ``b`` cost nothing)."""

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        diff = 1 - 0.5 * removed.double()[:, 2]
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


class CNotEnough(Redundant):
    """A validation batch on which ``c`` alone is not enough: ``a`` and ``b`` are needed."""

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        r = removed.double()
        diff = 1 - 0.5 * ((r[:, 0] + r[:, 1]) > 0).double()
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


def test_a_move_the_validation_batch_refuses_is_not_made():
    pruner = Pruner(Redundant(), Keep(logit=0.95))
    greedy = pruner.greedy()
    removed, moves = swap_pass(pruner, greedy, check=Pruner(CNotEnough(), Keep(logit=0.95)))
    assert removed.tolist() == greedy.tolist() and moves == []


def test_repair_re_adds_what_the_validation_batch_needs_then_the_swap_pass_prunes_on_both():
    pruner, check = Pruner(Redundant(), Keep(logit=0.95)), Pruner(NeedsC(), Keep(logit=0.95))
    greedy = pruner.greedy()  # {a, b}: on the validation batch c is missing
    repaired, added = repair(check, greedy)
    assert added == ["c"] and repaired.tolist() == [False, False, False]
    removed, moves = swap_pass(pruner, repaired, check=check)
    assert removed.tolist() == [True, True, False]  # {c}, one unit at a time
    assert [m.removed for m in moves] == [["a"], ["b"]] and all(m.added == "" for m in moves)


class Coarse(Redundant):
    """A validation batch where no single re-add changes the (coarse) whole-CoT share, but
    ``b`` raises the logit share and ``a`` does not: ties are broken by the logit share."""

    units = ["a", "b", "c"]

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        r = removed.double()
        diff = 1 - 0.5 * r[:, 1] - 0.3 * r[:, 2]
        cot = torch.where(r.sum(1) == 0, 1.0, 0.5)  # every unit needed for the chain
        return torch.stack([diff, torch.ones_like(diff), cot], dim=1)


def test_repair_breaks_ties_by_the_logit_share():
    check = Pruner(Coarse(), Keep(logit=0.1, cot=0.9))
    removed, added = repair(check, torch.tensor([True, True, True]))
    assert added[0] == "b" and removed.tolist() == [False, False, False]


def test_best_moves_are_the_moves_with_the_largest_predicted_margin():
    gen = torch.Generator().manual_seed(0)
    base = torch.tensor([0.97, 0.99, 0.96], dtype=torch.float64)
    drop = -torch.rand(6, 3, generator=gen, dtype=torch.float64) / 20  # [A, 3]
    add = torch.rand(5, 3, generator=gen, dtype=torch.float64) / 20  # [P, 3]
    thresholds = torch.tensor([0.9, float("-inf"), 0.95], dtype=torch.float64)
    c, i, j = best_moves(base, drop, add, thresholds, tries=10)
    every = []
    for cc, (ii, jj) in itertools.product(range(len(add) + 1), itertools.combinations(range(len(drop)), 2)):
        extra = add[cc - 1] if cc else torch.zeros(3, dtype=torch.float64)
        every.append(float((base + extra + drop[ii] + drop[jj] - thresholds).min()))
    got = [float((base + (add[cc - 1] if cc else 0) + drop[ii] + drop[jj] - thresholds).min())
           for cc, ii, jj in zip(c.tolist(), i.tolist(), j.tolist())]
    assert got == pytest.approx(sorted(every, reverse=True)[:10])
    assert bool((i < j).all()) and len(set(zip(c.tolist(), i.tolist(), j.tolist()))) == 10


@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_with_the_swap_pass_discovery_returns_exactly_the_planted_circuit(level):
    task = make_task("parity")
    groups, validation = (analysis_groups(task, [L], 8, seed=s) for s in (0, 4))
    r = discover(cot_model(), groups, level, keep=Keep(logit=0.95, cot=0.9), swap=True, validation=validation)
    assert set(r["nodes"]) == COT_NODES and r["swap"]
    if level == "edges":
        assert {e["label"] for e in r["edges"]} == COT_EDGES
    assert r["swap_moves"] == [] and r["repaired"] == []  # the planted circuit is minimal and holds on both batches


def test_cli_swap_reports_its_moves_and_the_validation_seed(tmp_path):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--keep", "logit=0.95,cot=0.9",
                              "--order", "nodes", "--swap", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES
    assert "swap pass" in " ".join(res.output.split())  # the table's title (wrapped)
    assert data["swap"] and data["validation_seed"] == data["seed"] + 4 and data["swap_moves"] == []
    assert data["fit"]["validation"]["acc_cot"] == 1.0  # the planted circuit on the validation batch
