"""A run directory survives anything: stopped before its first checkpoint, two processes
on one run, a full disk during a checkpoint, kills at random moments."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from comp.cli.main import app
from comp.errors import CompError
from comp.io import load_tensors
from comp.runs import lock
from comp.runs.files import CONFIG_FILE, METRICS_FILE, MODEL_FILE, STATE_FILE, run_status
from comp.runs.load import resume_config
from comp.runs.state import read_metadata
from comp.train import train

runner = CliRunner()
TINY = ["--n-layers", "1", "--n-heads", "2", "--d-model", "16", "--n-ctx", "32", "--train-lengths", "1-3",
        "--batch-size", "16", "--quiet", "--target-acc", "0", "--set", "eval_n=8", "--set", "final_eval_n=8",
        "--set", "threads=1", "--set", "eval_every=0", "--set", "warmup_steps=2", "--set", "log_every=2"]


def stale_run(run_dir: Path) -> None:
    """What a kill before the first checkpoint leaves: a config and a metrics line."""
    shutil.rmtree(run_dir, ignore_errors=True)
    train_args = ["train", "parity", *TINY, "--steps", "4", "--set", "ckpt_every=100", "--name", run_dir.name,
                  "--out", str(run_dir.parent)]
    assert runner.invoke(app, train_args).exit_code == 0
    for name in (STATE_FILE, MODEL_FILE, "eval.json"):
        (run_dir / name).unlink()
    assert run_status(run_dir) == "stale"


def test_a_run_stopped_before_its_first_checkpoint_restarts_or_resumes_from_scratch(tmp_path):
    run_dir = tmp_path / "r"
    cmd = ["train", "parity", *TINY, "--steps", "4", "--name", "r", "--out", str(tmp_path)]
    for again in (cmd, ["train", "--resume", str(run_dir)]):  # the same command, or --resume: both work
        stale_run(run_dir)
        res = runner.invoke(app, again)
        assert res.exit_code == 0, res.output
        assert "starting it" in res.output and run_status(run_dir) == "finished"
        steps = [json.loads(x)["step"] for x in (run_dir / METRICS_FILE).read_text().splitlines()]
        assert steps == [2, 4]  # the old run's metrics are gone
    assert resume_config(run_dir).train.steps == 4
    with pytest.raises(CompError, match="is not a comp run"):
        (tmp_path / "empty").mkdir()
        resume_config(tmp_path / "empty")


def test_a_stale_seed_group_restarts_with_the_same_command(tmp_path):
    cmd = ["train", "parity", *TINY, "--steps", "4", "--seeds", "0-1", "--out", str(tmp_path), "--name", "g"]
    assert runner.invoke(app, cmd).exit_code == 0
    for name in (STATE_FILE, MODEL_FILE, "eval.json"):
        (tmp_path / "g-s1" / name).unlink()
    res = runner.invoke(app, cmd)  # seed 0 is finished: the group is refused as before
    assert res.exit_code == 2 and "already exists (1 of 2 seeds)" in res.output
    res = runner.invoke(app, ["train", "--resume", str(tmp_path / "g-s0"), "--seeds", "0-1"])
    assert res.exit_code == 0 and "starting it from scratch" in res.output, res.output
    assert run_status(tmp_path / "g-s1") == "finished"


def test_the_second_process_on_a_run_is_refused_and_stale_locks_are_taken_over(tmp_path):
    run_dir = tmp_path / "r"
    cmd = ["train", "parity", *TINY, "--steps", "4", "--name", "r", "--out", str(tmp_path)]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir.mkdir()
        (run_dir / lock.LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "started": "x"}))
        res = runner.invoke(app, cmd)
        assert res.exit_code == 2 and f"is in use by process {holder.pid}" in res.output, res.output
        assert res.output.count("\n") == 1 and not (run_dir / CONFIG_FILE).exists()
    finally:
        holder.kill()
        holder.wait()
    res = runner.invoke(app, cmd)  # its holder is gone: the lock is stale and taken over
    assert res.exit_code == 0, res.output
    assert not (run_dir / lock.LOCK_FILE).exists()  # released at the end
    (run_dir / lock.LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "another-host"}))
    res = runner.invoke(app, ["train", "--resume", str(run_dir), "--steps", "6"])
    assert res.exit_code == 2 and "on another-host" in res.output and f"remove {run_dir / lock.LOCK_FILE}" in res.output
    (run_dir / lock.LOCK_FILE).write_text('{"pid": 1')  # half-written by a process killed while taking it
    assert lock.holder(run_dir) is None


def test_a_run_another_process_is_starting_is_not_cleared_as_stale(tmp_path):
    """A run with a config and no checkpoint yet looks stale; if a live process holds its lock it is
    starting, not dead: a study (or a second comp train) must refuse it, not delete its files."""
    from comp.runs.files import clear_unstarted

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / CONFIG_FILE).write_text("{}")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / lock.LOCK_FILE).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "started": "x"}))
        assert run_status(run_dir) == "stale"
        with pytest.raises(CompError, match=f"in use by process {holder.pid}"):
            clear_unstarted(run_dir)
        assert (run_dir / CONFIG_FILE).exists()  # untouched
    finally:
        holder.kill()
        holder.wait()
    clear_unstarted(run_dir)  # its holder is gone: a killed run, cleared
    assert not (run_dir / CONFIG_FILE).exists()


def test_the_lock_is_released_when_training_fails(tiny, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr("comp.train.loop.finish_run", boom)
    with pytest.raises(RuntimeError):
        train(tiny(steps=4), tmp_path / "r", quiet=True)
    assert not (tmp_path / "r" / lock.LOCK_FILE).exists()


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(tiny, tmp_path, monkeypatch):
    from safetensors.torch import save_file as real_save

    cfg = tiny(steps=30, ckpt_every=10)
    saved = []

    def save_file(tensors, path, metadata=None):
        if len(saved) == 1:  # the second checkpoint (step 20): the disk is full
            Path(path).write_bytes(b"\0" * 100)  # half written, then:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        saved.append(path)
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr("safetensors.torch.save_file", save_file)
    with pytest.raises(CompError, match=r"No space left on device.*last good checkpoint \(step 10\) is intact") as e:
        train(cfg, tmp_path / "r", quiet=True)
    assert "--resume" in str(e.value) and "\n" not in str(e.value)
    run_dir = tmp_path / "r"
    assert json.loads(read_metadata(run_dir / STATE_FILE)["state"])["step"] == 10
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")] == []  # no half file left
    assert not (run_dir / lock.LOCK_FILE).exists()
    monkeypatch.undo()
    resumed = train(resume_config(run_dir), run_dir, resume=True, quiet=True)  # space freed: it continues
    full = train(cfg, tmp_path / "full", quiet=True)
    assert resumed.state.step == 30
    a, b = load_tensors(run_dir / MODEL_FILE), load_tensors(full.run_dir / MODEL_FILE)
    assert all(torch.equal(a[k], b[k]) for k in a)


def kill_rounds(tmp_path: Path, rounds: int, seed: int) -> int:
    """Train a run through ``rounds`` SIGKILLs at random moments (the next process: ``comp train
    --resume``, the obvious command), then to the end; returns the kills that hit a live process."""
    rng = random.Random(seed)
    steps = 30
    cfg_args = [*TINY, "--steps", str(steps), "--set", "ckpt_every=3", "--set", "threads=2"]
    run_dir = tmp_path / "killed"
    first = [sys.executable, "-m", "comp", "train", "parity", *cfg_args, "--name", "killed", "--out", str(tmp_path)]
    again = [sys.executable, "-m", "comp", "train", "--resume", str(run_dir), "--quiet"]
    full = tmp_path / "full"
    began = time.monotonic()  # the uninterrupted run first: its wall time bounds the kill moments
    subprocess.run([sys.executable, "-m", "comp", "train", "parity", *cfg_args, "--name", "full", "--out", str(tmp_path)],
                   check=True, stdout=subprocess.DEVNULL, timeout=600)
    whole = time.monotonic() - began
    kills = 0
    for i in range(rounds):
        cmd = first if i == 0 or not run_dir.exists() else again
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.5) * whole)  # from importing torch into training (wall times vary 2x)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if run_status(run_dir) == "finished":
            break
    if run_status(run_dir) != "finished":
        cmd = first if not run_dir.exists() else again
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
        assert proc.returncode == 0, proc.stderr.decode()
    a, b = load_tensors(run_dir / MODEL_FILE), load_tensors(full / MODEL_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = load_tensors(run_dir / STATE_FILE), load_tensors(full / STATE_FILE)
    for k in sa:  # weights, AdamW state, the data stream (rng/torch, torch's global RNG, is not compared)
        if not k.startswith("rng/torch"):
            assert torch.equal(sa[k], sb[k]), k
    return kills


def test_kills_at_random_moments_resume_bit_identically(tmp_path):
    kills = kill_rounds(tmp_path, rounds=2, seed=0)
    print(f"survived {kills} kills")
    assert kills >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_many_kills_at_random_moments_resume_bit_identically(tmp_path, seed):
    kill_rounds(tmp_path, rounds=12, seed=seed)
