"""Group moves (``comp circuit --swap --groups``): a circuit the swap pass cannot shrink, because
its units only work together, shrinks by dropping the whole group and re-adding one unit."""

from __future__ import annotations

import json

import pytest
import torch
from planted import COT_EDGES, cot_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.graph import Edge
from comp.circuits.pruning import Keep, Pruner
from comp.circuits.swap import swap_pass
from comp.circuits.swap_groups import edge_groups, group_pass, group_round, removals
from comp.cli.main import app

runner = CliRunner()

GROUP = {"-> H": [0, 1, 2]}  # a1, a2, a3: e.g. every kept input of one head


class Interfering:
    """Four units scored by hand: the task is done by ``a1, a2, a3`` together (logit share 1)
    or by ``d`` alone (0.98: a share of 0.96); ``d`` with only part of the ``a``'s does it badly (0.5), and so
    does any part of the ``a``'s alone. Greedy pruning removes ``d`` and stops at the three
    ``a``'s; no removal of one or two of them (with ``d`` back or not) keeps 0.95, so the swap
    pass stops there too; the group move drops all three and re-adds ``d``: ``{d}``."""

    units = ["a1", "a2", "a3", "d"]

    def stage(self, unit: str) -> int:
        return 1

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        r = removed.double()
        kept_a, d = 3 - r[:, :3].sum(1), 1 - r[:, 3]
        diff = torch.where(kept_a == 3, 1.0, torch.where((kept_a == 0) & (d == 1), 0.98, 0.5))
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


class NeedsA(Interfering):
    """A validation batch on which ``d`` alone is not enough."""

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        diff = 1 - 0.5 * (removed.double()[:, :3].sum(1) > 0).double()
        return torch.stack([diff, torch.ones_like(diff), torch.ones_like(diff)], dim=1)


def test_the_swap_pass_is_stuck_and_the_group_move_finds_the_single_unit():
    pruner = Pruner(Interfering(), Keep(logit=0.95))
    greedy = pruner.greedy()
    assert greedy.tolist() == [False, False, False, True]  # the three a's: 1-minimal
    stuck, moves = swap_pass(pruner, greedy)
    assert stuck.tolist() == greedy.tolist() and moves == []  # no move of one or two units holds
    removed, moves, made = group_pass(pruner, stuck, GROUP)
    assert removed.tolist() == [True, True, True, False]  # {d}
    assert len(made) == 1 and made[0].group == "-> H" and made[0].removed == ["a1", "a2", "a3"]
    assert made[0].added == ["d"] and made[0].margin == pytest.approx(0.96 - 0.95, abs=1e-6) and moves == []


def test_a_group_move_needs_the_validation_batch_too():
    pruner, check = Pruner(Interfering(), Keep(logit=0.95)), Pruner(NeedsA(), Keep(logit=0.95))
    start = torch.tensor([False, False, False, True])
    assert group_round(pruner, start, GROUP, check) is None
    removed, moves, made = group_pass(pruner, start, GROUP, check)
    assert removed.tolist() == start.tolist() and moves == [] and made == []


def test_a_repair_as_long_as_the_group_is_no_move():
    pruner = Pruner(Interfering(), Keep(logit=0.99))  # {d} (a share of 0.96) misses: only the a's hold
    assert group_round(pruner, torch.tensor([False, False, False, True]), GROUP) is None


def test_groups_are_ranked_by_least_harm_each_set_once():
    pruner = Pruner(Interfering(), Keep(logit=0.95))
    start = torch.tensor([False, False, False, True])
    groups = {"-> H": [0, 1, 2], "H ->": [2, 1, 0], "-> G": [0, 1, 3]}  # the same set twice; one with a pruned unit
    ranked, shares = removals(pruner, start, groups)
    assert ranked == [((0, 1, 2), "-> H")] and shares.tolist() == [[0.0, 1.0, 1.0]]  # logit share 0: 0.5 is the empty model's


def test_groups_smaller_than_three_are_left_to_the_swap_pass():
    pruner = Pruner(Interfering(), Keep(logit=0.95))
    assert group_round(pruner, torch.tensor([False, False, False, True]), {"-> H": [0, 1]}) is None


def test_edge_groups_share_a_sender_a_receiver_input_or_a_receiver():
    units = [Edge("embed", "L0H0.q", "input"), Edge("embed", "L0H0.k", "input"), Edge("L0H0", "L1H0.k", "answer"),
             Edge("MLP0", "L1H0.k", "answer"), Edge("L0H0", "logits", "answer")]
    g = edge_groups(units)
    assert g["embed@input ->"] == [0, 1] and g["L0H0@answer ->"] == [2, 4]
    assert g["-> L0H0.q"] == [0] and g["-> L0H0"] == [0, 1] and g["-> L1H0.k"] == [2, 3] and g["-> L1H0"] == [2, 3]
    assert g["-> logits"] == [4] and edge_groups(["a", "b"]) == {}



def test_cli_group_moves_keep_exactly_the_planted_circuit(tmp_path):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    args = ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--keep", "logit=0.95,cot=0.9", "--order", "nodes"]
    res = runner.invoke(app, [*args, "--swap", "--groups", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES  # minimal: no group move holds
    assert data["group_pass"] and data["group_moves"] == [] and "group moves" in " ".join(res.output.split())
    bad = tmp_path / "bad.json"
    res = runner.invoke(app, [*args, "--groups", "--json", str(bad)])  # without --swap
    assert res.exit_code == 2 and "error: --groups runs after the swap pass; give --swap too" in res.output
    assert not bad.exists()
