"""comp dynamics: stages found on hand-made snapshots with a planted iteration head, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from planted import L, planted_model, save_planted_run
from typer.testing import CliRunner

from comp.cli.main import app
from comp.dynamics import dynamics_run
from comp.dynamics.stages import formation_step, jump_step
from comp.errors import CompError
from comp.runs.state import model_tensors, save_snapshot

PLANTED_FROM = 8  # the snapshots from this step on have the iteration head


def planted_snapshots(run_dir, steps=(0, 1, 2, 4, 8, 16, 32)):
    """Snapshots of the planted model; before PLANTED_FROM its iteration head (L1H0) has no query."""
    for step in steps:
        model = planted_model()
        if step < PLANTED_FROM:
            with torch.no_grad():
                model.blocks[1].attn.W_Q[0].zero_()  # uniform attention: x_t is not fetched
        save_snapshot(run_dir, model_tensors(model), step)
    return run_dir


def test_planted_iteration_head_forms_at_the_planted_step(tmp_path):
    run = planted_snapshots(save_planted_run(tmp_path / "planted"))
    (run / "model.safetensors").unlink()  # a run still training: only its config and snapshots are read
    d = dynamics_run(str(run), "acc,heads", n=32)
    assert [s.step for s in d.snapshots] == [0, 1, 2, 4, 8, 16, 32] and d.lengths == [L]
    stages = {s.name: s for s in d.stages}
    assert stages["iteration_head"].step == PLANTED_FROM and stages["iteration_head"].after == 4
    assert stages["train_acc"].step == PLANTED_FROM
    assert "long_acc" not in stages  # no length past the training one asked
    late, early = d.snapshots[4].values, d.snapshots[3].values
    assert late["iteration_head"] == "L1H0" and late["iteration"] > 0.9 and early["iteration"] < 0.5
    assert late[f"acc_L{L}"] == 1.0 and early[f"acc_L{L}"] < 0.5
    assert late["eoi_anchor"] > 0.9 and late["prev_token"] > 0.9  # L0H0 and L0H1 planted throughout


def test_stage_rules():
    assert formation_step([0.1, 0.6, 0.2, 0.7, 0.9], 0.5) == 3  # the blip at index 1 does not stay
    assert formation_step([0.1, 0.2], 0.5) is None
    assert jump_step([0.0, 0.1, 0.8, 0.9], 0.2) == 2
    assert jump_step([0.0, 0.1, 0.15], 0.2) is None


def test_cli_writes_json_and_plot(tmp_path):
    run = planted_snapshots(save_planted_run(tmp_path / "planted"), steps=(0, 8))
    out, plot = tmp_path / "d.json", tmp_path / "d.html"
    res = CliRunner().invoke(app, ["dynamics", "--ckpt", str(run), "--n", "16", "--json", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [s["step"] for s in data["snapshots"]] == [0, 8] and "iteration_head: step 8" in res.output
    assert "<html>" in plot.read_text() and "iteration_head @ 8" in plot.read_text()


@pytest.mark.parametrize("case", ["missing", "no-snapshots", "bad-measure", "bad-plot"])
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, case):
    run = save_planted_run(tmp_path / "planted")
    if case != "no-snapshots":
        planted_snapshots(run, steps=(0,))
    args = {"missing": [str(tmp_path / "nope")], "no-snapshots": [str(run)],
            "bad-measure": [str(run), "--measures", "acc,loss"], "bad-plot": [str(run), "--plot", str(tmp_path / "d.pdf")]}
    out = tmp_path / "d.json"
    res = CliRunner().invoke(app, ["dynamics", *args[case], "--json", str(out)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "Traceback" not in res.output
    assert not out.exists()
    if case == "bad-plot":
        return  # the plot's file type is the command's to check
    with pytest.raises(CompError):
        dynamics_run(*args[case][:1], **({"measures": "acc,loss"} if case == "bad-measure" else {}))


def test_circuit_measure_on_planted_snapshots(tmp_path):
    pytest.importorskip("comp.circuits.discover")  # runs once circuit discovery (DISC) is in the checkout
    run = planted_snapshots(save_planted_run(tmp_path / "planted"), steps=(0, 8))
    d = dynamics_run(str(run), "circuit", n=16)
    early, late = d.snapshots[0].values, d.snapshots[1].values
    assert early["circuit_nodes"] is None  # step 0 does not solve the task: no circuit
    assert late["circuit_faithfulness"] >= 0.95 and 2 < late["circuit_nodes"] < 10
