"""The local backend end to end: worker processes, states, wandb groups, results, and a
preempted run (SIGUSR1) that resumes exactly on resubmission."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from comp.cli.main import app
from comp.grid.launch import launch
from comp.grid.spec import expand, load_grid
from comp.grid.status import grid_status
from comp.io import load_tensors
from comp.runs.load import load_run_config
from comp.signals import EXIT_INTERRUPTED
from comp.train import train

runner = CliRunner()
TINY = ("train parity --batch-size 16 --train-lengths 1-3 --d-model 32 --n-heads 2 --set eval_n=16 "
        "--set final_eval_n=16 --set threads=1 --set warmup_steps=5")


def grid_file(tmp_path: Path, **data) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "runs"), "backend": "local", **data}, sort_keys=False))
    return path


def metric_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_local_grid_runs_states_wandb_group_and_collect(tmp_path):
    """Two workers: one run finishes, one fails at run time (context too short for its lengths)."""
    path = grid_file(tmp_path, name="tiny", command=f"{TINY} --steps 20", axes={"seed": [3], "n_ctx": [64, 6]},
                     wandb=True, max_parallel=2)
    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 1 and "1 of 2 runs did not finish" in res.output, res.output
    done, failed = (tmp_path / "runs" / "tiny" / r for r in ("seed=3_n_ctx=64", "seed=3_n_ctx=6"))
    status = grid_status(path)
    assert status["counts"] == {"done": 1, "failed": 1}
    bad = status["rows"][1]
    assert bad["state"] == "failed" and bad["rc"] not in (0, None) and "failed (exit" in bad["log_tail"][-1]
    assert "log tail" in res.output
    # the command line reached the run's config; runs of the grid share a wandb group, offline
    cfg = json.loads((done / "config.json").read_text())
    assert (cfg["train"]["seed"], cfg["model"]["n_ctx"], cfg["train"]["steps"]) == (3, 64, 20)
    assert cfg["train"]["wandb"] and cfg["train"]["wandb_group"] == "tiny"
    offline = list((done / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and b"tiny" in offline[0].read_bytes() and "tiny.seed=3_n_ctx=64" in offline[0].name
    # results table, JSON and CSV
    res = runner.invoke(app, ["collect", str(path), "--json", str(tmp_path / "c.json"), "--csv", str(tmp_path / "c.csv")])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [(r["run"], r["state"], r["seed"], r["n_ctx"]) for r in rows] == [
        ("seed=3_n_ctx=64", "done", 3, 64), ("seed=3_n_ctx=6", "failed", 3, 6)]
    assert rows[0]["step"] == 20 and 0 <= rows[0]["acc_generate_L3"] <= 1 and "final_loss" in rows[0]
    assert (tmp_path / "c.csv").read_text().count("\n") == 3
    # resubmitting runs only what is not done
    assert launch(path, dry_run=True).todo == [1]


@pytest.mark.slow  # two trainings in subprocesses; tests/test_grid_slurm.py covers this path on a real cluster
def test_sigusr1_checkpoints_and_resubmission_resumes_exactly(tmp_path):
    """The preemption path without Slurm: SIGUSR1 to the task runner -> the run checkpoints
    and stops (interrupted); resubmitting resumes it: no lost or repeated steps, and the
    same weights as a run that never stopped."""
    path = grid_file(tmp_path, name="pre", command=f"{TINY} --steps 200 --set ckpt_every=50 --set log_every=10",
                     axes={"seed": [0]})
    grid = load_grid(path)
    grid.dir.write_manifest(expand(grid))
    run_dir = grid.out / "pre" / "seed=0"
    task = subprocess.Popen([sys.executable, "-m", "comp.grid.task", str(grid.dir.root), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and task.poll() is None:
        if (run_dir / "metrics.jsonl").exists() and any(s >= 20 for s in metric_steps(run_dir)):
            break
        time.sleep(0.05)
    assert task.poll() is None, task.stdout.read().decode()
    task.send_signal(signal.SIGUSR1)
    assert task.wait(60) == EXIT_INTERRUPTED, task.stdout.read().decode()
    assert grid_status(path)["rows"][0]["state"] == "interrupted"
    stopped_at = json.loads((grid.dir.record_path("seed=0")).read_text())
    assert stopped_at["state"] == "interrupted" and not (run_dir / "model.safetensors").exists()

    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 0, res.output
    assert "--resume" in grid.dir.log_path("seed=0").read_text()
    assert metric_steps(run_dir) == list(range(10, 201, 10))
    reference = train(load_run_config(run_dir), tmp_path / "reference", quiet=True).run_dir
    ours, ref = load_tensors(run_dir / "model.safetensors"), load_tensors(reference / "model.safetensors")
    assert ours.keys() == ref.keys() and all(torch.equal(ours[k], ref[k]) for k in ours)
