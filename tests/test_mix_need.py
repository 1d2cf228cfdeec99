"""The need-weighted mixture (``train.mix = need``): each member's share of the batch follows
1 - its lowest accuracy (at least ``mix_floor``), set at every evaluation, saved for resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import stop_at
from test_per_task import MEMBERS, PER_TASK, eval_rows, multi
from test_train import assert_same, weights

from comp.config import TrainConfig
from comp.errors import CompError
from comp.runs.load import resume_config
from comp.runs.state import TrainState
from comp.tasks import make_task, vocab
from comp.tasks.mixture import share_sizes
from comp.train import train
from comp.train.per_task import initial_member_hi, initial_member_share, need_weights, next_batch, record_member_eval
from comp.train.reporting import MetricsLog, WandbLogger

NEED = dict(PER_TASK, mix="need", curriculum_per_task=False)


def test_share_sizes_are_proportional_with_a_row_each():
    assert share_sizes([1, 1, 1], 128) == [43, 43, 42]  # the even split, remainder to the first
    assert share_sizes([0.1, 0.1, 0.4], 128) == [22, 22, 84]  # 1 each + 125 * (1/6, 1/6, 4/6) = 20.8, 20.8, 83.3
    assert share_sizes([0.0, 0.0, 1.0], 10) == [1, 1, 8]  # a weightless member keeps one row
    assert sum(share_sizes([0.3, 0.7, 0.2], 97)) == 97
    with pytest.raises(CompError, match="positive sum"):
        share_sizes([0.0, 0.0], 8)


def test_batch_rows_follow_the_shares():
    task = make_task("multi", tasks=MEMBERS)
    batch = task.sample(torch.Generator().manual_seed(0), "1-4", 128, shares={"parity": 0.1, "copy": 0.1, "polynomial": 0.4})
    counts = [int((batch.task_tokens == vocab.TASK_TOKENS[m]).sum()) for m in MEMBERS]
    assert counts == [22, 22, 84]


def test_weights_follow_each_members_need(tmp_path):
    t = TrainConfig(train_lengths="1-8", mix="need", curriculum_start=4, curriculum_step=4, mix_floor=0.1)
    assert t.curriculum_per_task and t.curriculum  # need implies the per-task curriculum
    task = make_task("multi", tasks=MEMBERS)
    state = TrainState(hi=4, member_hi=initial_member_hi(task, t), member_share=initial_member_share(task, t))
    assert state.member_share == {"parity": 1.0, "copy": 1.0, "polynomial": 1.0}
    run = SimpleNamespace(cfg=SimpleNamespace(train=t), state=state, metrics=MetricsLog(tmp_path / "m.jsonl"),
                          wandb=WandbLogger(False, "", "", "", {}, tmp_path, False))
    solved = dict.fromkeys(range(1, 5), 1.0)
    record_member_eval(run, {"parity": solved, "copy": {1: 1.0, 2: 0.97, 3: 0.99, 4: 1.0},
                             "polynomial": {1: 1.0, 2: 0.9, 3: 0.5, 4: 0.25}})
    assert state.member_share == pytest.approx({"parity": 0.1, "copy": 0.1, "polynomial": 0.75})
    assert need_weights({"a": 0.2, "b": 0.95}, 0.1) == pytest.approx({"a": 0.8, "b": 0.1})
    batch = next_batch(task, torch.Generator().manual_seed(1), state, t)
    rows = {m: batch.task_tokens == vocab.TASK_TOKENS[m] for m in MEMBERS}
    assert [int(r.sum()) for r in rows.values()] == share_sizes([0.1, 0.1, 0.75], t.batch_size)
    assert int(batch.lengths[rows["polynomial"]].max()) <= 4 < int(batch.lengths[rows["parity"]].max())


def test_even_mix_keeps_no_shares_and_bad_mix_is_refused():
    task = make_task("multi", tasks=MEMBERS)
    assert initial_member_share(task, TrainConfig(curriculum_per_task=True)) == {}
    with pytest.raises(CompError, match="unknown mix 'greedy'; choose even or need"):
        TrainConfig(mix="greedy")
    with pytest.raises(CompError, match=r"mix_floor must be in \(0, 1\]"):
        TrainConfig(mix="need", mix_floor=0)


def test_training_records_shares_and_resumes_exactly(tmp_path):
    full = train(multi(**NEED), tmp_path / "full", quiet=True)
    rows = eval_rows(full.run_dir)
    for row in rows:
        want = need_weights(row["eval_min_by_task"], 0.1)
        assert row["share_by_task"] == pytest.approx(want)
    assert full.state.member_share == pytest.approx(rows[-1]["share_by_task"])
    assert any(len(set(r["share_by_task"].values())) > 1 for r in rows)  # members really were apart
    train(multi(**NEED), tmp_path / "part", quiet=True, should_stop=stop_at(33))
    resumed = train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    assert resumed.state.member_share == full.state.member_share and resumed.state.step == full.state.step
    assert_same(weights(full.run_dir), weights(tmp_path / "part"))


def test_need_trains_differently_from_even(tmp_path):
    even = train(multi(**PER_TASK), tmp_path / "even", quiet=True).run_dir
    need = train(multi(**NEED), tmp_path / "need", quiet=True).run_dir
    assert any((weights(even)[k] != weights(need)[k]).any() for k in weights(even))
