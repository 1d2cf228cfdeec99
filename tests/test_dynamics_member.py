"""comp dynamics --member: a multi-task run's snapshots measured on one member task alone,
equal to the head scores and accuracies of that member computed directly."""

from __future__ import annotations

import pytest
from test_per_task import multi
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.heads import head_scores
from comp.cli.main import app
from comp.dynamics import dynamics_run
from comp.errors import CompError
from comp.io import load_tensors
from comp.runs.files import snapshot_steps
from comp.runs.load import load_run_for_lengths
from comp.runs.state import load_model_tensors
from comp.tasks import member_task
from comp.train import train
from comp.train.loop import quick_eval


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    cfg = multi(train_lengths="1-4", steps=30, eval_every=10, save_every="0,10,30")
    return train(cfg, tmp_path_factory.mktemp("dyn") / "m", quiet=True).run_dir


def test_member_measures_equal_the_members_own(multi_run):
    d = dynamics_run(str(multi_run), "acc,heads", lengths="1-4", n=16, member="copy")
    assert d.member == "copy" and [s.step for s in d.snapshots] == [0, 10, 30]
    run = load_run_for_lengths(str(multi_run), [1, 2, 3, 4], weights=False)
    copy = member_task(run.task, "copy")
    groups = analysis_groups(copy, [1, 2, 3, 4], 16, d.seed, "cpu")
    whole = dynamics_run(str(multi_run), "acc,heads", lengths="1-4", n=16)
    for (step, path), snap, both in zip(snapshot_steps(multi_run), d.snapshots, whole.snapshots):
        load_model_tensors(run.model, load_tensors(path, "snapshot"), str(path))
        rows = head_scores(run.model, groups)
        assert snap.values["iteration"] == pytest.approx(max(r.iteration for r in rows)), step
        accs = quick_eval(run.model, copy, [1, 2, 3, 4], 16, d.seed)
        assert [snap.values[f"acc_L{k}"] for k in range(1, 5)] == pytest.approx([accs[k] for k in range(1, 5)])
        assert all(both.values[f"acc_L{k}"] <= snap.values[f"acc_L{k}"] + 1e-9 for k in range(1, 5))  # whole: lowest member


def test_unknown_member_is_one_error_line(multi_run, tmp_path):
    with pytest.raises(CompError, match="task 'sort' is not in this run; choose one of: parity, copy, polynomial"):
        dynamics_run(str(multi_run), "acc", member="sort")
    out = tmp_path / "d.json"
    res = CliRunner().invoke(app, ["dynamics", str(multi_run), "--member", "sort", "--json", str(out)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and not out.exists()
