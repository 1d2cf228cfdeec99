"""The per-task curriculum of mixtures (comp.train.per_task): each member widens on its own
accuracy, samples its own lengths, and the run resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import stop_at, tiny_config
from test_multiseed import dirs
from test_train import assert_same, weights

from comp.config import TaskConfig, TrainConfig
from comp.errors import CompError
from comp.runs.load import resume_config
from comp.runs.state import TrainState
from comp.tasks import make_task, vocab
from comp.train import train
from comp.train.multiseed import train_seeds
from comp.train.per_task import initial_member_hi, member_ranges, record_member_eval
from comp.train.reporting import MetricsLog, WandbLogger

MEMBERS = ["parity", "copy", "polynomial"]
# lengths 1-4 from 1, one more per widening at 0.5: within 60 steps parity and copy widen, polynomial lags
PER_TASK = dict(train_lengths="1-4", curriculum_per_task=True, curriculum_start=1, curriculum_step=1,
                curriculum_threshold=0.5, eval_every=10, steps=60)


def multi(**train):
    cfg = tiny_config(**train)
    cfg.task = TaskConfig(name="multi", tasks=list(MEMBERS))
    return cfg


def eval_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "eval_min_by_task" in r]


def test_each_member_samples_its_own_lengths():
    task = make_task("multi", tasks=MEMBERS)
    ranges = {"parity": "1-2", "copy": "5-6", "polynomial": 3}
    batch = task.sample(torch.Generator().manual_seed(0), ranges, 300)
    for name, want in [("parity", {1, 2}), ("copy", {5, 6}), ("polynomial", {3})]:
        rows = batch.task_tokens == vocab.TASK_TOKENS[name]
        assert rows.sum() == 100 and set(batch.lengths[rows].tolist()) == want, name
    assert batch.tokens.shape[1] == task.seq_len(6)  # padded to the longest member's longest length
    with pytest.raises(CompError, match="no lengths for member task 'polynomial'"):
        task.sample(torch.Generator().manual_seed(0), {"parity": 2, "copy": 2}, 6)


def test_solved_member_widens_unsolved_does_not(tmp_path):
    """The rule, on given accuracies: widen exactly the members at the threshold; early stopping
    counts only once every member trains on the full range."""
    t = TrainConfig(train_lengths="1-8", curriculum_per_task=True, curriculum_start=4, curriculum_step=4,
                    curriculum_threshold=0.95, target_acc=0.99, patience=1)
    task = make_task("multi", tasks=MEMBERS)
    state = TrainState(hi=4, member_hi=initial_member_hi(task, t))
    run = SimpleNamespace(cfg=SimpleNamespace(train=t), state=state, metrics=MetricsLog(tmp_path / "m.jsonl"),
                          wandb=WandbLogger(False, "", "", "", {}, tmp_path, False))
    solved, unsolved = dict.fromkeys(range(1, 5), 1.0), {1: 1.0, 2: 0.9, 3: 0.5, 4: 0.2}
    low = record_member_eval(run, {"parity": solved, "copy": dict(solved), "polynomial": unsolved})
    assert low == 0.2 and state.member_hi == {"parity": 8, "copy": 8, "polynomial": 4} and state.hi == 8
    assert member_ranges(state, t, task)["polynomial"].hi == 4 and member_ranges(state, t, task)["copy"].hi == 8
    assert not state.done
    eight = dict.fromkeys(range(1, 9), 1.0)
    record_member_eval(run, {"parity": eight, "copy": eight, "polynomial": solved})  # widens polynomial only
    assert state.member_hi == {"parity": 8, "copy": 8, "polynomial": 8} and not state.done and state.hits == 0
    record_member_eval(run, {"parity": eight, "copy": eight, "polynomial": eight})
    assert state.done and state.stop_reason == "target"
    rows = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows[0]["max_length_by_task"] == {"parity": 4, "copy": 4, "polynomial": 4}  # the lengths evaluated
    assert rows[0]["eval_min_by_task"] == {"parity": 1.0, "copy": 1.0, "polynomial": 0.2}


def test_training_widens_members_independently(tmp_path):
    run_dir = train(multi(**PER_TASK), tmp_path / "r", quiet=True).run_dir
    rows = eval_rows(run_dir)
    t = TrainConfig(**{k: v for k, v in PER_TASK.items()})
    for before, after in zip(rows, rows[1:]):
        for name in MEMBERS:
            hi, widened = before["max_length_by_task"][name], after["max_length_by_task"][name]
            solved = before["eval_min_by_task"][name] >= t.curriculum_threshold and hi < 4
            assert widened == (hi + 1 if solved else hi), (before["step"], name)
            assert sorted(int(k) for k in after["eval_acc_by_task"][name]) == list(range(1, widened + 1))
    assert any(len(set(r["max_length_by_task"].values())) > 1 for r in rows)  # members really were apart
    state = json.loads((run_dir / "eval.json").read_text())
    assert state["step"] == 60


def test_per_task_on_one_task_is_the_plain_curriculum(tmp_path):
    opts = dict(PER_TASK, curriculum_per_task=False, curriculum=True, steps=40)
    plain = train(tiny_config(**opts), tmp_path / "plain", quiet=True).run_dir
    per_task = train(tiny_config(**dict(opts, curriculum_per_task=True)), tmp_path / "per", quiet=True).run_dir
    assert_same(weights(plain), weights(per_task))
    assert [r["eval_min"] for r in eval_rows(per_task)] == [
        json.loads(x)["eval_min"] for x in (plain / "metrics.jsonl").read_text().splitlines() if "eval_min" in x]


def test_resume_equals_uninterrupted(tmp_path):
    full = train(multi(**PER_TASK), tmp_path / "full", quiet=True)
    part = train(multi(**PER_TASK), tmp_path / "part", quiet=True, should_stop=stop_at(27))
    assert part.interrupted and part.state.step == 27
    resumed = train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    assert resumed.state.member_hi == full.state.member_hi and resumed.state.step == 60
    assert_same(weights(full.run_dir), weights(tmp_path / "part"))
    assert (tmp_path / "part" / "metrics.jsonl").read_text().count("\n") == (
        full.run_dir / "metrics.jsonl").read_text().count("\n")
    assert eval_rows(tmp_path / "part")[-1]["eval_acc_by_task"] == eval_rows(full.run_dir)[-1]["eval_acc_by_task"]


def test_seeds_trained_together_match_alone(tmp_path):
    opts = dict(PER_TASK, steps=30)
    results = train_seeds(multi(**opts), [0, 1], dirs(tmp_path, [0, 1]), quiet=True)
    for seed, result in zip([0, 1], results):
        alone = train(multi(seed=seed, **opts), tmp_path / f"alone-s{seed}", quiet=True)
        # weights to float tolerance: as in test_multiseed (fused kernel alone, hook path stacked), but
        # three tasks' rounding makes the tiny b_K gradients' AdamW noise ~2e-4 (the plain curriculum's too)
        a, b = weights(result.run_dir), weights(alone.run_dir)
        for k in a:
            tol = 1e-3 if k.endswith("attn.b_K") else 1e-4
            torch.testing.assert_close(a[k], b[k], atol=tol, rtol=tol, msg=k)
        assert result.state.member_hi == alone.state.member_hi
        for a, b in zip(eval_rows(result.run_dir), eval_rows(alone.run_dir)):  # nested per-task rows, here
            assert a["max_length_by_task"] == b["max_length_by_task"]
            for name in MEMBERS:
                assert a["eval_acc_by_task"][name] == pytest.approx(b["eval_acc_by_task"][name], abs=1e-4)
