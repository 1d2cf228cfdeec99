"""A real Slurm cluster: arrays of tiny trainings, runs that resume exactly after
``scontrol requeue`` and after the preemption warning (``SIGUSR1`` to the batch shell),
a pack of seeds in one task, and ``comp lengthgen --backend slurm``.

Needs a running cluster (``launchers/local-slurm/start.sh``; ``.ci/run`` starts one);
skipped when ``sinfo`` is absent. Requeued jobs are started early with ``scontrol
update jobid=ID StartTime=now`` instead of waiting out ``cred_expire``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from comp.cli.main import app
from comp.grid.layout import GridDir
from comp.grid.status import grid_status
from comp.io import load_tensors
from comp.runs.load import load_run_config
from comp.train import train
from comp.train.multiseed import train_seeds


def _slurm_down() -> str:
    """Why no cluster answers here ("" when one does)."""
    if shutil.which("sinfo") is None:
        return "no Slurm here (sinfo not found)"
    if subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode != 0:
        return "no Slurm controller answers (sinfo failed)"
    return ""


_DOWN = _slurm_down()
if _DOWN and os.environ.get("COMP_REQUIRE_SLURM"):  # CI starts a cluster: its absence is a failure there
    raise RuntimeError(f"COMP_REQUIRE_SLURM is set but {_DOWN}")
pytestmark = pytest.mark.skipif(
    bool(_DOWN), reason=f"{_DOWN}; start a one-node cluster with launchers/local-slurm/start.sh"
)
runner = CliRunner()
TINY = ("train parity --batch-size 16 --train-lengths 1-3 --d-model 32 --n-heads 2 --set eval_n=16 "
        "--set final_eval_n=16 --set threads=1 --set warmup_steps=5 --set log_every=10 --target-acc 0")


def sh(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
    return proc.stdout


def submit(tmp_path: Path, **data) -> tuple[Path, GridDir, str]:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "runs"), "slurm": {"cpus": 1, "time": "10"}, **data},
                                   sort_keys=False))
    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 0 and "submitted Slurm job" in res.output, res.output
    grid = GridDir(tmp_path / "runs" / data["name"])
    (job,) = [j["job_id"] for j in grid.jobs()]
    assert f"submitted Slurm job {job} " in res.output
    return path, grid, job


def wait(job: str, timeout: float, each=lambda: None) -> None:
    """Poll ``squeue`` until the job has left the queue; start requeued tasks early.

    A requeued task waits ``cred_expire`` (30 s here) before it may start again;
    ``StartTime=now`` skips that, but only once the old credential's second has passed:
    a restart within the same second is killed with "Job credential revoked"."""
    deadline = time.time() + timeout
    requeued: dict[str, float] = {}
    while time.time() < deadline:
        each()
        rows = [r.split() for r in sh("squeue", "-h", "-r", "-j", job, "-o", "%i %T %r").splitlines()]
        if not rows:
            return
        for task, state, reason in rows:
            if state == "PENDING" and reason == "BeginTime":
                since = requeued.setdefault(task, time.time())
                if time.time() - since >= 2:
                    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], capture_output=True)
            else:
                requeued.pop(task, None)
        time.sleep(0.2)
    subprocess.run(["scancel", job])
    pytest.fail(f"job {job} still queued after {timeout}s: {sh('squeue', '-h', '-r', '-j', job)}")


def steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [r["step"] for r in map(json.loads, lines) if "loss" in r]


def same_weights_as_uninterrupted(run_dir: Path, tmp_path: Path) -> bool:
    ref = train(load_run_config(run_dir), tmp_path / f"ref-{run_dir.name}", quiet=True).run_dir
    a, b = load_tensors(run_dir / "model.safetensors"), load_tensors(ref / "model.safetensors")
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_slurm_array_runs_every_line_and_resubmission_skips_them(tmp_path):
    """A grid whose name needs quoting, three runs on two CPUs; then a resubmission that submits nothing."""
    name = "it's a grid $(x)"
    path, grid, job = submit(tmp_path, name=name, command=f"{TINY} --steps 20", axes={"seed": [0, 1, 2]})
    assert f"--job-name={name}" in grid.script.read_text().replace("'\"'\"'", "'")
    wait(job, 240)
    status = grid_status(path)
    assert status["counts"] == {"done": 3}, status["rows"]
    for i, row in enumerate(status["rows"]):
        assert row["job"] == f"{job}_{i}" and row["attempt"] == 0
        assert (grid.root / row["run"] / "eval.json").exists()
        assert "done (exit 0)" in (grid.logs / f"slurm-{job}_{i}.out").read_text()
        assert json.loads((grid.root / row["run"] / "config.json").read_text())["train"]["wandb_group"] == name
    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 0 and "nothing to do (3 done)" in res.output, res.output
    assert len(grid.jobs()) == 1
    res = runner.invoke(app, ["collect", str(grid.root), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [r["seed"] for r in rows] == [0, 1, 2] and all(r["step"] == 20 for r in rows)


def test_requeue_and_preemption_warning_resume_exactly(tmp_path):
    """Task 0 is requeued by hand (scontrol requeue: SIGTERM), task 1 gets the preemption
    warning (SIGUSR1 to the batch shell) and requeues itself. Both resume from their
    checkpoints: every logged step exactly once, and the weights of an uninterrupted run."""
    path, grid, job = submit(tmp_path, name="preempt", command=f"{TINY} --steps 400 --set ckpt_every=50",
                             axes={"seed": [0, 1]})
    runs = [grid.root / "seed=0", grid.root / "seed=1"]
    actions = {0: ["scontrol", "requeue", f"{job}_0"], 1: ["scancel", "--signal=USR1", "--batch", f"{job}_1"]}
    hit: dict[int, int] = {}

    def interrupt_mid_run() -> None:
        for i, cmd in actions.items():
            if i not in hit and steps(runs[i]) and steps(runs[i])[-1] >= 30:
                assert not (runs[i] / "eval.json").exists(), "finished before it could be interrupted"
                hit[i] = steps(runs[i])[-1]
                sh(*cmd)

    wait(job, 240, interrupt_mid_run)
    assert set(hit) == {0, 1}
    for run_dir in runs:
        record = json.loads(grid.record_path(run_dir.name).read_text())
        log = grid.log_path(run_dir.name).read_text()
        assert record["state"] == "done" and record["attempt"] >= 1, log
        assert f"comp train --resume {run_dir} --quiet" in log
        assert steps(run_dir) == list(range(10, 401, 10)), log
        assert same_weights_as_uninterrupted(run_dir, tmp_path)
    assert "requeued (exit 0)" in grid.log_path("seed=1").read_text()
    assert "interrupted (exit 75)" in grid.log_path("seed=0").read_text()


def test_packed_seeds_share_a_task_and_resume_together_after_the_warning(tmp_path):
    """pack: seed: one array task trains both seeds (comp train --seeds). The preemption
    warning checkpoints every seed and requeues the task; the next attempt resumes both:
    every logged step once, and the weights of an uninterrupted multi-seed run."""
    path, grid, job = submit(tmp_path, name="packed", command=f"{TINY} --steps 200 --set ckpt_every=50",
                             axes={"seed": [0, 1]}, pack="seed")
    assert "#SBATCH --array=0\n" in grid.script.read_text()
    runs = [grid.root / "seed=0", grid.root / "seed=1"]
    hit: list[int] = []

    def warn_mid_run() -> None:
        if not hit and all(steps(r) and steps(r)[-1] >= 30 for r in runs):
            assert not any((r / "eval.json").exists() for r in runs), "finished before it could be interrupted"
            hit.append(steps(runs[0])[-1])
            sh("scancel", "--signal=USR1", "--batch", f"{job}_0")

    wait(job, 240, warn_mid_run)
    assert hit
    status = grid_status(path)
    assert status["counts"] == {"done": 2} and {r["job"] for r in status["rows"]} == {f"{job}_0"}
    log = grid.log_path("seed=1").read_text()
    assert "--seeds 0,1" in log and "requeued (exit 0)" in log and f"--resume '{grid.root}/seed={{seed}}' --seeds 0,1" in log
    reference = train_seeds(load_run_config(runs[0]), [0, 1], [tmp_path / "ref" / f"s{s}" for s in (0, 1)], quiet=True)
    for run_dir, ref in zip(runs, reference):
        assert json.loads(grid.record_path(run_dir.name).read_text())["attempt"] >= 1
        assert steps(run_dir) == list(range(10, 201, 10)), log
        ours, theirs = load_tensors(run_dir / "model.safetensors"), load_tensors(ref.run_dir / "model.safetensors")
        for k in ours:
            torch.testing.assert_close(ours[k], theirs[k], atol=1e-6, rtol=1e-6)


def test_lengthgen_backend_slurm_submits_then_the_same_command_reports(tmp_path, monkeypatch):
    """comp lengthgen --backend slurm submits the study's runs (seeds packed) and returns;
    comp grid status works on the study's directory; the same command, once the job is
    done, submits nothing and writes the report."""
    monkeypatch.setattr("comp.lengthgen.report.write_png", lambda fig, path: None)  # Chromium: tested elsewhere
    out = tmp_path / "study"
    sets = ["model.d_model=16", "model.n_heads=2", "train.batch_size=16", "train.threads=1", "train.eval_every=0",
            "train.final_eval_n=8", "train.warmup_steps=2"]
    args = ["lengthgen", "--pe", "nope", "--seeds", "0,1", "--train-lengths", "1-2", "--test-lengths", "1-4",
            "--steps", "10", "--n", "4", "--quiet", "--out", str(out), "--backend", "slurm", "--pack-seeds",
            "--cpus", "1", "--time", "10", *(a for s in sets for a in ("--set", s))]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "submitted Slurm job" in res.output and "pending runs: parity-nope-s0, parity-nope-s1" in res.output
    grid = GridDir(out)
    (job,) = [j["job_id"] for j in grid.jobs()]
    assert "#SBATCH --job-name=study" in grid.script.read_text()
    wait(job, 120)
    res = runner.invoke(app, ["grid", "status", str(out)])
    assert res.exit_code == 0 and "2 done" in res.output, res.output
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "1x (L=2)" in res.output and "pending" not in res.output, res.output
    assert len(grid.jobs()) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["pending"] == [] and len(results["rows"]) == 2 * 4
    assert json.loads((out / "runs" / "parity-nope-s1" / "config.json").read_text())["train"]["wandb_group"] == "study"
