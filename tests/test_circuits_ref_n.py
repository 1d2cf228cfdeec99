"""``--ref-n``: a reference set of its own size for every batch. A mean ablation replaces with
the mean of *every* reference row (checked against TransformerLens hooks), whatever the
reference's size against the batch's; discovery on the planted model still returns exactly
the planted circuit; the circuit JSON records it and ``comp circuit score`` reuses it; bad
values are one error line."""

from __future__ import annotations

import json

import pytest
import torch
from planted import COT_EDGES, L, cot_model, discovery_model, save_planted_run
from typer.testing import CliRunner

from comp.circuits.circuit_eval import NodeEvaluator, answer_scores
from comp.circuits.data import Group, analysis_groups
from comp.circuits.discover import check_ref_n
from comp.circuits.graph import Graph
from comp.cli.main import app
from comp.errors import CompError
from comp.tasks import make_task

runner = CliRunner()


def test_reference_sets_have_ref_n_rows_and_default_to_n():
    task = make_task("parity")
    (g,) = analysis_groups(task, [L], 8, seed=0, ref_n=40)
    assert len(g.batch.tokens) == 8 and len(g.reference.tokens) == 40
    (d,) = analysis_groups(task, [L], 8, seed=0)
    assert len(d.reference.tokens) == 8
    assert torch.equal(d.batch.tokens, g.batch.tokens)  # the clean rows do not depend on the reference's size


def _by_hand(model, group: Group, reference: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """(logit difference, final answer, whole CoT) with one head's z replaced by its mean over
    ``reference`` at each position, by TransformerLens hooks."""
    name = f"blocks.{layer}.attn.hook_z"
    _, cache = model.run_with_cache(reference, names_filter=name)
    mean = cache[name][:, :, head].mean(0)  # [pos, d_head]

    def edit(z, hook):
        z = z.clone()
        z[:, :, head] = mean
        return z

    with torch.no_grad():
        logits = model.run_with_hooks(group.batch.tokens, fwd_hooks=[(name, edit)])
    sums = answer_scores(group, group.task.n_classes)(logits[None])[0]
    return sums / torch.tensor([float(group.batch.loss_mask.sum()), len(logits), len(logits)], dtype=sums.dtype)


def test_a_mean_ablation_replaces_with_the_mean_of_every_reference_row():
    model = discovery_model()
    (g,) = analysis_groups(make_task("parity"), [L], 8, seed=0, ref_n=40)
    graph = Graph.of(model, split_positions=False)
    ev = NodeEvaluator(model, graph, [g], "mean")
    differs = 0
    for u, node in enumerate(ev.units):
        if "H" not in node.name:
            continue
        layer, head = int(node.name[1 : node.name.index("H")]), int(node.name.split("H")[1])
        removed = torch.zeros(1, len(ev.units))
        removed[0, u] = 1
        got = ev.evaluate(removed)[0].double()
        want = _by_hand(model, g, g.reference.tokens, layer, head).double()
        assert torch.allclose(got, want, atol=1e-5), node.name
        first8 = _by_hand(model, g, g.reference.tokens[:8], layer, head).double()
        differs += int(abs(float(first8[0] - want[0])) > 1e-4)  # the 8-row mean is another ablation
    assert differs > 0


def test_the_mean_does_not_depend_on_repeated_reference_rows_nor_on_the_batch_being_larger():
    model = discovery_model()
    (g,) = analysis_groups(make_task("parity"), [L], 16, seed=0, ref_n=4)
    twice = Group(g.task, g.length, g.batch, g.reference.select(torch.arange(8) % 4))
    graph = Graph.of(model)
    removed = torch.rand(6, len(graph.nodes)) < 0.3
    a = NodeEvaluator(model, graph, [g], "mean").evaluate(removed)
    b = NodeEvaluator(model, graph, [twice], "mean").evaluate(removed)
    assert torch.allclose(a, b, atol=1e-6)


def test_check_ref_n():
    assert check_ref_n(0, 32, "mean") == 32 and check_ref_n(256, 32, "mean") == 256
    assert check_ref_n(0, 32, "resample") == 32 and check_ref_n(32, 32, "resample") == 32
    with pytest.raises(CompError, match="negative"):
        check_ref_n(-1, 32, "mean")
    with pytest.raises(CompError, match="resample"):
        check_ref_n(64, 32, "resample")


def test_cli_discovery_with_ref_n_finds_the_planted_circuit_and_score_reuses_it(tmp_path):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out, scored, again = tmp_path / "c.json", tmp_path / "s.json", tmp_path / "s8.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--level", "edges", "--n", "8", "--ref-n", "64",
                              "--keep", "logit=0.95,cot=0.9", "--order", "nodes", "--swap", "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {e["label"] for e in data["edges"]} == COT_EDGES and data["ref_n"] == 64
    res = runner.invoke(app, ["circuit", "score", str(out), "--ckpt", str(run), "--n", "8", "--json", str(scored)])
    assert res.exit_code == 0, res.output
    assert json.loads(scored.read_text())["ref_n"] == 64  # as the circuit was found
    res = runner.invoke(app, ["circuit", "score", str(out), "--ckpt", str(run), "--n", "8", "--ref-n", "0", "--json", str(again)])
    assert res.exit_code == 0, res.output
    assert json.loads(again.read_text())["ref_n"] == 8  # 0: as many as --n
    old = dict(data)
    del old["ref_n"]  # a circuit written before --ref-n: scored with as many as --n
    (tmp_path / "old.json").write_text(json.dumps(old))
    res = runner.invoke(app, ["circuit", "score", str(tmp_path / "old.json"), "--ckpt", str(run), "--n", "8", "--json", str(again)])
    assert res.exit_code == 0 and json.loads(again.read_text())["ref_n"] == 8, res.output


@pytest.mark.parametrize("extra, named", [(["--ref-n", "-1"], "--ref-n"),
                                          (["--ablation", "resample", "--ref-n", "64"], "--ref-n 64")])
def test_cli_refuses_bad_ref_n(tmp_path, extra, named):
    run = save_planted_run(tmp_path / "cot", discovery=True, model=cot_model())
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["circuit", "--ckpt", str(run), "--n", "8", *extra, "--json", str(out)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and named in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()
