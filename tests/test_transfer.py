"""Transfer (--init-from, --freeze) and weight snapshots (--save-every): ground truth on tiny runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from comp.cli.main import app
from comp.errors import CompError
from comp.io import load_tensors
from comp.model import build_model
from comp.runs.files import MODEL_FILE, STATE_FILE, snapshot_path, snapshot_steps
from comp.runs.load import resume_config
from comp.runs.snapshots import snapshot_schedule
from comp.runs.transfer import config_hash
from comp.train import train
from comp.train.multiseed import train_seeds


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_tensors(path)


def stopper(at: int):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == at

    return stop


def test_frozen_groups_bit_identical_and_without_optimizer_state(tiny, trained_run, tmp_path):
    parent = weights(trained_run / MODEL_FILE)
    child = train(tiny(steps=15, init_from=str(trained_run), freeze=["embed", "attn0"]), tmp_path / "c", quiet=True)
    after = weights(child.run_dir / MODEL_FILE)
    frozen = [n for n in after if n.startswith(("embed.", "pos_embed.", "blocks.0.attn."))]
    assert frozen and all(torch.equal(after[n], parent[n]) for n in frozen)
    moved = [n for n in after if n not in frozen and not torch.equal(after[n], parent[n])]
    assert "blocks.1.attn.W_Q" in moved and "unembed.W_U" in moved
    state = load_tensors(child.run_dir / STATE_FILE)
    slots = {k.split("/")[1] for k in state if k.startswith("optim/")}
    assert len(slots) == len(after) - len(frozen)  # AdamW holds state for the trained parameters only


def test_parent_recorded_and_first_weights_are_the_parents(tiny, trained_run, tmp_path):
    child = train(tiny(steps=5, init_from=str(trained_run), save_every="0"), tmp_path / "c", quiet=True).run_dir
    record = json.loads((child / "config.json").read_text())["train"]["parent"]
    parent_cfg = json.loads((trained_run / "config.json").read_text())
    assert record["step"] == 60 and Path(record["path"]) == trained_run.resolve()
    assert record["config_hash"] == config_hash(parent_cfg) and record["task"] == "parity"
    assert record["commit"] == parent_cfg["meta"]["git_commit"]
    start = weights(snapshot_path(child, 0))
    parent = weights(trained_run / MODEL_FILE)
    assert all(torch.equal(start[n], parent[n]) for n in parent)


def test_transfer_run_resumes_exactly(tiny, trained_run, tmp_path):
    cfg = dict(steps=20, init_from=str(trained_run), freeze=["mlp"])
    full = train(tiny(**cfg), tmp_path / "full", quiet=True).run_dir
    part = train(tiny(**cfg), tmp_path / "part", quiet=True, should_stop=stopper(7))
    assert part.interrupted
    train(resume_config(tmp_path / "part"), tmp_path / "part", resume=True, quiet=True)
    a, b = weights(full / MODEL_FILE), weights(tmp_path / "part" / MODEL_FILE)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_bad_parent_is_one_error_and_writes_nothing(tiny, trained_run, tmp_path):
    wide = tiny(init_from=str(trained_run))
    wide.model.d_model = 64
    with pytest.raises(CompError, match="does not match"):
        train(wide, tmp_path / "w", quiet=True)
    with pytest.raises(CompError, match="no run"):
        train(tiny(init_from=str(tmp_path / "nope")), tmp_path / "m", quiet=True)
    with pytest.raises(CompError, match="matches no parameter"):
        train(tiny(init_from=str(trained_run), freeze=["layer7"]), tmp_path / "f", quiet=True)
    assert not any((tmp_path / d).exists() for d in ("w", "m", "f"))
    res = CliRunner().invoke(app, ["train", "parity", "--init-from", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and res.output.count("error:") == 1 and "nope" in res.output


def test_log_schedule():
    assert snapshot_schedule("log", 40, 20) == {0, 1, 2, 4, 8, 16, 20, 32, 40}
    assert snapshot_schedule("0,5,100", 40) == {0, 5, 40}
    assert snapshot_schedule("", 40) == set()
    with pytest.raises(CompError, match="save-every"):
        snapshot_schedule("often", 40)


def test_snapshot_equals_a_run_stopped_there_and_resume_keeps_the_schedule(tiny, tmp_path):
    cfg = dict(steps=20, save_every="log")
    full = train(tiny(**cfg), tmp_path / "full", quiet=True).run_dir
    stopped = train(tiny(**cfg), tmp_path / "part", quiet=True, should_stop=stopper(4))
    at4 = load_tensors(stopped.run_dir / STATE_FILE)
    snap4 = weights(snapshot_path(full, 4))
    assert all(torch.equal(snap4[n], at4[f"model/{n}"]) for n in snap4)
    train(resume_config(stopped.run_dir), stopped.run_dir, resume=True, quiet=True)
    wanted = sorted(snapshot_schedule("log", 20, 20))
    assert [s for s, _ in snapshot_steps(stopped.run_dir)] == wanted == [s for s, _ in snapshot_steps(full)]
    for (_, a), (_, b) in zip(snapshot_steps(full), snapshot_steps(stopped.run_dir)):
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[n], wb[n]) for n in wa)
    last = weights(snapshot_path(full, 20))
    final = weights(full / MODEL_FILE)
    assert all(torch.equal(last[n], final[n]) for n in final)


def test_multiseed_snapshots(tiny, tmp_path):
    cfg = tiny(steps=10, save_every="0,3")
    dirs = [tmp_path / f"s{s}" for s in (0, 1)]
    train_seeds(cfg, [0, 1], dirs, quiet=True)
    for seed, d in zip((0, 1), dirs):
        assert [s for s, _ in snapshot_steps(d)] == [0, 3, 10]
        init = build_model(cfg.model, seed=seed)
        snap0 = weights(snapshot_path(d, 0))
        assert all(torch.equal(snap0[n], p.detach()) for n, p in init.named_parameters())
        final, snap10 = weights(d / MODEL_FILE), weights(snapshot_path(d, 10))
        assert all(torch.equal(final[n], snap10[n]) for n in final)
    with pytest.raises(CompError, match="--freeze"):
        train_seeds(tiny(freeze=["embed"]), [0, 1], [tmp_path / "f0", tmp_path / "f1"], quiet=True)
