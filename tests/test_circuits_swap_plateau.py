"""Plateau moves (``comp circuit --swap --plateau K``) and the selection batch (``--select``):
a circuit the swap pass cannot shrink shrinks after one-out-one-in; the smallest circuit of
the search's trail that holds on a selection batch is kept; on the planted model both keep
exactly the planted circuit."""

from __future__ import annotations

import json

import pytest
import torch
from planted import COT_EDGES, COT_NODES, L, cot_model, save_planted_run
from test_circuits_swap import CNotEnough, Redundant
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.circuits.pruning import Keep, Pruner
from comp.circuits.swap import swap_pass
from comp.circuits.swap_plateau import plateau_move, plateau_pass
from comp.circuits.swap_select import choose
from comp.cli.main import app
from comp.tasks import make_task

runner = CliRunner()


class Stuck:
    """Four units scored by hand (the logit difference, here equal to its share: 0 for every set not listed). ``c`` does
    the task alone but interferes with ``a``; ``b1`` and ``b2`` write two halves of one signal
    (both or neither). From ``{a, b1, b2}`` (0.951) no move of the swap pass holds; the
    plateau move ``-a +c`` gives ``{b1, b2, c}`` (0.97), from which the swap pass drops
    ``b1`` and ``b2`` together: ``{c}`` (0.96)."""

    units = ["a", "b1", "b2", "c"]
    table = {"a b1 b2 c": 1.0, "a b1 b2": 0.951, "b1 b2 c": 0.97, "c": 0.96}

    def stage(self, unit: str) -> int:
        return 1

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        keys = [" ".join(u for u, r in zip(self.units, row) if not r) for row in removed.tolist()]
        diff = torch.tensor([self.table.get(k, 0.0) for k in keys], dtype=torch.float64)
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


class NoPlateau(Stuck):
    """A validation batch on which ``{b1, b2, c}`` misses: the plateau move is refused."""

    table = {"a b1 b2 c": 1.0, "a b1 b2": 0.951, "c": 0.96}


class AllNeeded(Redundant):
    """A selection batch on which every unit is needed."""

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        diff = 1 - 0.5 * removed.any(1).double()
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


START = torch.tensor([False, False, False, True])  # {a, b1, b2}


def test_the_swap_pass_is_stuck_and_a_plateau_move_then_the_swap_pass_find_the_single_unit():
    pruner = Pruner(Stuck(), Keep(logit=0.95))
    assert swap_pass(pruner, START)[1] == []  # no move of two out and at most one in holds
    trail = [START]
    removed, swaps, made = plateau_pass(pruner, START, moves=3, trail=trail)
    assert removed.tolist() == [True, True, True, False]  # {c}
    assert [(m.removed, m.added) for m in made] == [("a", "c")]
    assert made[0].margin_before == pytest.approx(0.001) and made[0].margin == pytest.approx(0.02)
    assert [sorted(m.removed) for m in swaps] == [["b1", "b2"]]
    assert [(~t).sum().item() for t in trail] == [3, 3, 1]  # the start, after the plateau move, after the swap


def test_a_plateau_move_the_validation_batch_refuses_is_not_made():
    pruner, check = Pruner(Stuck(), Keep(logit=0.95)), Pruner(NoPlateau(), Keep(logit=0.95))
    assert plateau_move(pruner, check, START) is None
    removed, swaps, made = plateau_pass(pruner, START, check, moves=3)
    assert removed.tolist() == START.tolist() and swaps == [] and made == []


def test_a_plateau_move_never_re_adds_a_unit_a_plateau_move_removed():
    pruner = Pruner(Stuck(), Keep(logit=0.95))
    # from {b1, b2, c} the only move that raises the margin would bring a back ({a, b1, b2, c} is the full model)
    after = torch.tensor([True, False, False, False])
    assert plateau_move(pruner, None, after) is None  # no same-size move raises 0.02 ...
    assert plateau_move(pruner, None, START, fixed_out={3}) is None  # ... and c, once forbidden, is not re-added


def test_the_selection_batch_keeps_the_smallest_circuit_of_the_trail_that_holds_there():
    pruner = Pruner(Redundant(), Keep(logit=0.95))
    greedy = pruner.greedy()  # {a, b}
    trail = [greedy]
    swap_pass(pruner, greedy, trail=trail)  # then {c}
    assert [t.tolist() for t in trail] == [[False, False, True], [True, True, False]]
    removed, sel = choose(Pruner(Redundant(), Keep(logit=0.95)), trail, seed=7)
    assert removed.tolist() == [True, True, False] and sel.chosen == 1 and sel.held and sel.sizes == [2, 1]
    removed, sel = choose(Pruner(CNotEnough(), Keep(logit=0.95)), trail, seed=7)  # {c} alone misses there
    assert removed.tolist() == [False, False, True] and sel.chosen == 0 and sel.held
    assert sel.margins[1] == pytest.approx(0.0 - 0.95) and sel.seed == 7  # {c} there: no better than nothing
    removed, sel = choose(Pruner(AllNeeded(), Keep(logit=0.95)), trail, seed=7)  # none holds: the last, flagged
    assert removed.tolist() == [True, True, False] and sel.chosen == 1 and not sel.held


def test_ties_in_size_go_to_the_largest_margin_on_the_selection_batch():
    pruner = Pruner(Stuck(), Keep(logit=0.95))
    trail = [START, torch.tensor([True, False, False, False])]  # {a, b1, b2} 0.951, {b1, b2, c} 0.97: same size
    removed, sel = choose(pruner, trail, seed=0)
    assert sel.chosen == 1 and removed.tolist() == [True, False, False, False]


@pytest.mark.parametrize("level", ["nodes", "edges"])
def test_with_plateau_moves_and_a_selection_batch_discovery_returns_exactly_the_planted_circuit(level):
    task = make_task("parity")
    groups, validation, selection = (analysis_groups(task, [L], 8, seed=s) for s in (0, 4, 6))
    r = discover(cot_model(), groups, level, keep=Keep(logit=0.95, cot=0.9), swap=True, validation=validation,
                 plateau=2, select=Keep(answer=0.96, cot=0.92), selection=selection, selection_seed=6)
    assert set(r["nodes"]) == COT_NODES
    if level == "edges":
        assert {e["label"] for e in r["edges"]} == COT_EDGES
    assert r["plateau_moves"] == [] and r["selection"]["held"]  # nothing raises the planted circuit's margin
    assert r["selection"]["chosen"] == len(r["selection"]["sizes"]) - 1


def test_cli_plateau_and_select_report_the_selection(tmp_path):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--keep", "logit=0.95,cot=0.9",
                              "--order", "nodes", "--swap", "--plateau", "2", "--select", "answer=0.96,cot=0.92",
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES
    assert data["plateau"] == 2 and data["plateau_moves"] == []
    assert data["selection"]["seed"] == data["seed"] + 6 and data["selection"]["keep"]["cot"] == 0.92
    assert "selection batch" in res.output


@pytest.mark.parametrize("extra, named", [(["--plateau", "2"], "--plateau"), (["--select", "cot=0.9"], "--select"),
                                          (["--swap", "--select", "cot=2"], "--select cot")])
def test_cli_plateau_and_select_refuse_bad_input(tmp_path, extra, named):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", *extra, "--json", str(out)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and named in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()
