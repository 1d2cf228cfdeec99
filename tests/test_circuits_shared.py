"""Per-task circuits of a multi-task run (``--member``) and the shared-versus-specific table
(``comp circuit shared``): hand-made circuits with a known answer, the planted parity circuit
inside a parity+copy run, bad input."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from planted import DISCOVERY_CONFIG, DISCOVERY_NODES, L, discovery_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.circuit_shared import component_of, shared_components
from comp.circuits.heads import score_heads
from comp.cli.main import app
from comp.config import RunConfig, TaskConfig, TrainConfig
from comp.errors import CompError
from comp.model import ModelConfig
from comp.runs.state import prepare_run_dir, save_weights

runner = CliRunner()


def circuit(member: str, nodes: list[str], edges: list[str], level: str = "nodes", run: str = "multi-s0") -> dict:
    """A circuit JSON as comp circuit --json writes it (the keys the comparison reads)."""
    def edge(label: str) -> dict:
        sender, receiver = label.split(" -> ")
        name, _, cls = sender.partition("@")
        return {"sender": name, "receiver": receiver, "cls": cls, "label": label, "effect": None}

    return {"run": run, "member": member, "level": level, "nodes": [*nodes, "logits"], "edges": [edge(e) for e in edges]}


# parity and polynomial share an iteration head L1H2 (at the answer positions); copy uses L1H1 instead;
# every task uses the embedding and MLP1; parity alone uses L0H3 (at EoI); polynomial alone MLP0
PARITY = circuit("parity", ["embed@input", "L0H3@eoi", "L1H2@answer", "MLP1@answer"],
                 ["embed@input -> L1H2.v", "L0H3@eoi -> MLP1", "L1H2@answer -> MLP1", "MLP1@answer -> logits"])
COPY = circuit("copy", ["embed@input", "L1H1@answer", "MLP1@answer"],
               ["embed@input -> L1H1.v", "L1H1@answer -> MLP1", "MLP1@answer -> logits"])
POLY = circuit("polynomial", ["embed@input", "MLP0@input", "L1H2@answer", "L1H2@eoi", "MLP1@answer"],
               ["embed@input -> MLP0", "MLP0@input -> L1H2.v", "L1H2@answer -> MLP1", "MLP1@answer -> logits"])


def test_hand_made_circuits_give_the_known_table():
    s = shared_components([PARITY, COPY, POLY])
    assert s.names == ["parity", "copy", "polynomial"] and s.level == "nodes"
    used = {r.unit: (r.used_by, r.sharing) for r in s.components}
    assert used == {
        "embed": (["parity", "copy", "polynomial"], "shared"), "MLP1": (["parity", "copy", "polynomial"], "shared"),
        "L1H2": (["parity", "polynomial"], "partial"), "L1H1": (["copy"], "specific"),
        "L0H3": (["parity"], "specific"), "MLP0": (["polynomial"], "specific")}
    assert [r.unit for r in s.components] == ["embed", "L0H3", "MLP0", "L1H1", "L1H2", "MLP1"]  # forward order
    nodes = {r.unit: r.used_by for r in s.nodes}
    assert nodes["L1H2@answer"] == ["parity", "polynomial"] and nodes["L1H2@eoi"] == ["polynomial"]
    assert "logits" not in nodes
    assert s.counts["components"] == {"shared": 2, "parity+polynomial": 1, "only parity": 1, "only copy": 1,
                                      "only polynomial": 1}
    assert s.counts["nodes"] == {"shared": 2, "parity+polynomial": 1, "only parity": 1, "only copy": 1,
                                 "only polynomial": 2}
    assert s.counts["edges"] == {"shared": 1, "parity+polynomial": 1, "only parity": 2, "only copy": 2,
                                 "only polynomial": 2}
    assert s.sizes["polynomial"] == {"nodes": 5, "components": 4, "edges": 4}
    pairs = {(p.a, p.b): p for p in s.pairs}
    pp = pairs[("parity", "polynomial")]
    assert pp.component_jaccard == pytest.approx(3 / 5) and pp.node_jaccard == pytest.approx(3 / 6)
    assert pp.edge_jaccard == pytest.approx(2 / 6)  # from comp circuit diff
    assert pairs[("parity", "copy")].component_jaccard == pytest.approx(2 / 5)
    # comp circuit diff pairs parity's L0H3@eoi with nothing (no other layer-0 head at EoI in polynomial)
    assert all(m["a"] != "L0H3@eoi" for m in pp.roles_matched)
    assert component_of("L1H2@answer") == "L1H2"


def test_two_circuits_of_one_task_are_named_by_run_and_bad_input_is_an_error():
    other = dict(PARITY, run="multi-s1")
    assert shared_components([PARITY, other]).names == ["multi-s0", "multi-s1"]
    assert shared_components([PARITY, COPY], ["p", "c"]).names == ["p", "c"]
    with pytest.raises(CompError, match="at least two"):
        shared_components([PARITY])
    with pytest.raises(CompError, match="different levels"):
        shared_components([PARITY, dict(COPY, level="edges")])
    with pytest.raises(CompError, match="one distinct name per circuit"):
        shared_components([PARITY, COPY], ["a"])
    with pytest.raises(CompError, match="same name"):
        shared_components([PARITY, dict(PARITY)])


def test_shared_cli_prints_the_table_and_writes_json(tmp_path):
    paths = []
    for c in (PARITY, COPY, POLY):
        paths.append(tmp_path / f"{c['member']}.json")
        paths[-1].write_text(json.dumps(c))
    out = tmp_path / "shared.json"
    res = runner.invoke(app, ["circuit", "shared", *map(str, paths), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "parity+polynomial" in res.output and "only copy" in res.output and "L1H2@answer" in res.output
    data = json.loads(out.read_text())
    assert data["counts"]["components"]["shared"] == 2 and data["names"] == ["parity", "copy", "polynomial"]
    # bad input: one error line, exit 2, nothing written
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run": "x"}))
    for args, message in [([str(paths[0]), str(bad)], "bad.json is not a comp circuit JSON"),
                          ([str(paths[0])], "at least two"),
                          ([str(paths[0]), str(tmp_path / "none.json")], "no such circuit file"),
                          ([*map(str, paths), "--names", "a,b"], "one distinct name per circuit")]:
        out2 = tmp_path / "never.json"
        res = runner.invoke(app, ["circuit", "shared", *args, "--json", str(out2)])
        assert res.exit_code == 2 and message in res.output, res.output
        assert res.output.count("error:") == 1 and "Traceback" not in res.output and not out2.exists()


# ---- --member on a multi-task run: the planted parity circuit in a parity+copy model ---------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The planted discovery model saved as a parity run and as a parity+copy run (it solves parity only)."""
    root = tmp_path_factory.mktemp("member")
    parity = save_planted_run(root / "parity", discovery=True)
    cfg = RunConfig(task=TaskConfig(name="multi", tasks=["parity", "copy"]), model=ModelConfig(**DISCOVERY_CONFIG),
                    train=TrainConfig(train_lengths=str(L)))
    multi = root / "multi"
    prepare_run_dir(multi, cfg)
    save_weights(multi, discovery_model(), cfg, step=0)
    return parity, multi


def test_member_circuit_of_a_multi_run_is_the_planted_one(runs, tmp_path):
    _, multi = runs
    out = tmp_path / "parity.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(multi), "--member", "parity", "--n", "8", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "multi on parity: nodes circuit" in res.output
    data = json.loads(out.read_text())
    assert data["member"] == "parity" and data["task"] == "multi" and set(data["nodes"]) == DISCOVERY_NODES
    assert data["circuit"]["recovered"] == pytest.approx(1.0, abs=1e-5) and data["model"]["acc_answer"] == 1.0
    # comp circuit score scores it on the member it was found on
    res = runner.invoke(app, ["circuit", "score", str(out), "--ckpt", str(multi), "--n", "8",
                              "--json", str(tmp_path / "score.json")])
    assert res.exit_code == 0, res.output
    score = json.loads((tmp_path / "score.json").read_text())
    assert score["member"] == "parity" and score["circuit"]["recovered"] == pytest.approx(1.0, abs=1e-5)


def test_member_head_scores_equal_the_single_task_runs(runs):
    parity, multi = runs
    alone = score_heads(str(parity), n=16)
    member = score_heads(str(multi), n=16, member="parity")
    copy = score_heads(str(multi), n=16, member="copy")
    both = score_heads(str(multi), n=16)
    assert member.member == "parity" and [asdict(r) for r in member.rows] == [asdict(r) for r in alone.rows]
    for b, p, c in zip(both.rows, member.rows, copy.rows):  # every member: the two tasks weighed equally
        for score in ("prev_token", "iteration", "eoi_anchor", "bos", "self"):
            assert getattr(b, score) == pytest.approx((getattr(p, score) + getattr(c, score)) / 2, abs=1e-6)


@pytest.mark.parametrize("member, message", [
    ("polynomial", "task 'polynomial' is not in this run; choose one of: parity, copy"),
    ("copy", "does not solve its task"),  # the planted circuit computes parity, not copy
])
def test_bad_member_is_one_error_line_and_exit_2(runs, tmp_path, member, message):
    _, multi = runs
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(multi), "--member", member, "--n", "8", "--json", str(out)])
    assert res.exit_code == 2 and message in res.output, res.output
    assert res.output.count("error:") == 1 and "Traceback" not in res.output and not out.exists()
    res = runner.invoke(app, ["heads", "--ckpt", str(multi), "--member", "polynomial", "--json", str(out)])
    assert res.exit_code == 2 and "is not in this run" in res.output and not out.exists()
