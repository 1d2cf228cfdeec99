"""Seed packing (``pack: seed``) and run name templates: manifests, golden files, the
commands of a pack in every state, and packed grids end to end with the local backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from comp.cli.argv import check_command_lines
from comp.cli.main import app
from comp.errors import CompError
from comp.grid.backends import job_script
from comp.grid.bases import TrainBase
from comp.grid.launch import launch
from comp.grid.layout import manifest_text
from comp.grid.spec import Grid, expand, load_grid
from comp.grid.status import grid_status
from comp.io import load_tensors
from comp.runs.files import STATE_FILE
from comp.runs.load import load_run_config
from comp.runs.names import seed_run_dir
from comp.signals import EXIT_INTERRUPTED
from comp.train.multiseed import train_seeds

GOLDEN = Path(__file__).parent / "golden"
runner = CliRunner()
TINY = ("train parity --batch-size 16 --train-lengths 1-3 --d-model 32 --n-heads 2 --set eval_n=16 "
        "--set final_eval_n=16 --set threads=1 --set warmup_steps=5 --set log_every=10 --target-acc 0")


def packed(out: Path, **kw) -> Grid:
    spec = dict(name="pk", command=["train", "parity", "--steps", "20"], axes={"pe": ["rotary", "nope"], "seed": [0, 1, 2]},
                out=out, pack="seed")
    return Grid(**{**spec, **kw})


def test_packed_manifest_groups_seeds_into_tasks(tmp_path):
    lines = expand(packed(tmp_path, axes={"seed": [0, 1], "pe": ["rotary", "nope"]}, wandb=True))
    # seed varies slowest here: a task's lines need not be adjacent
    assert [(x.run, x.task) for x in lines] == [("seed=0_pe=rotary", 0), ("seed=0_pe=nope", 1),
                                                ("seed=1_pe=rotary", 0), ("seed=1_pe=nope", 1)]
    x = lines[2]
    assert x.argv == ["train", "parity", "--steps", "20", "--seed", "1", "--pe", "rotary", "--name", "seed=1_pe=rotary",
                      "--out", str(tmp_path / "pk"), "--quiet", "--wandb-group", "pk", "--wandb"]  # the run alone
    assert x.pack == {"argv": ["train", "parity", "--steps", "20", "--pe", "rotary", "--name", "seed={seed}_pe=rotary",
                               "--out", str(tmp_path / "pk"), "--quiet", "--wandb-group", "pk", "--wandb"],
                      "run_dir": str(tmp_path / "pk" / "seed={seed}_pe=rotary")}
    assert lines[0].pack == x.pack and lines[1].pack != x.pack
    check_command_lines(lines)  # the packed command (with --seeds) parses as comp train too
    unpacked = expand(packed(tmp_path, pack=""))
    assert [x.task for x in unpacked] == list(range(6)) and all(x.pack is None for x in unpacked)
    assert [x.run for x in unpacked] == [x.run for x in expand(packed(tmp_path))]  # packing keeps the names


def test_packed_manifest_and_job_script_golden(monkeypatch):
    """The exact manifest and job script of a packed grid (regenerate with COMP_UPDATE_GOLDEN=1)."""
    monkeypatch.chdir("/")
    monkeypatch.setattr(sys, "executable", "/venv/bin/python")
    grid = packed(Path("/runs"), name="parity pe's", run_name="parity-{pe}-s{seed}", runs_subdir="runs",
                  command=["train", "parity", "--train-lengths", "1-16", "--set", "model.d_model=64"])
    lines = expand(grid)
    script = job_script(grid.dir, sorted({x.task for x in lines}), 2, {"time": "01:00:00", "cpus": 2})
    for name, text in [("packed.manifest.jsonl", manifest_text(lines)), ("packed.sbatch", script)]:
        if os.environ.get("COMP_UPDATE_GOLDEN"):
            (GOLDEN / name).write_text(text)
        assert text == (GOLDEN / name).read_text(), name
    assert "#SBATCH --array=0-1%2" in script


def test_run_name_templates(tmp_path):
    lines = expand(packed(tmp_path, run_name="parity-{pe}-s{seed}", pack="", axes={"pe": ["rotary+coupling"],
                                                                                     "seed": [0, 1]}))
    assert [x.run for x in lines] == ["parity-rotary+coupling-s0", "parity-rotary+coupling-s1"]
    assert lines[0].run_dir == str(tmp_path / "pk" / "parity-rotary+coupling-s0")
    assert expand(packed(tmp_path, runs_subdir="runs"))[0].run_dir == str(tmp_path / "pk" / "runs" / "pe=rotary_seed=0")
    grid = yaml.safe_dump({"command": "train parity", "axes": {"seed": [0, 1]}, "run_name": "s{seed}", "pack": "seed",
                           "out": str(tmp_path)})
    (tmp_path / "g.yaml").write_text(grid)
    assert [x.run for x in expand(load_grid(tmp_path / "g.yaml"))] == ["s0", "s1"]


@pytest.mark.parametrize("kw,match", [
    (dict(run_name="{pe}-{seeds}"), r"unknown axes \['seeds'\]"),
    (dict(run_name="{pe} s{seed}"), "may hold letters, digits"),
    (dict(run_name="_{pe}{seed}"), "may not start with"),
    (dict(run_name="{pe}"), "must hold {seed} when seeds are packed"),
    (dict(pack="pe"), "pack 'pe' is not supported"),
    (dict(axes={"pe": ["rotary"]}), "needs a seed axis"),
    (dict(axes={"seed": ["a"]}), "needs a seed axis of whole numbers"),
    (dict(command=["train", "parity", "--seed", "3"]), "remove --seed"),
    (dict(command=["eval", "--ckpt", "x"]), "the command is comp eval"),
    (dict(command=["train", "parity", "--seeds", "0-3"], pack=""), r"sets --seeds .*pack: seed"),
    (dict(axes={"seeds": ["0-3"]}, pack=""), r"sets --seeds"),
])
def test_bad_packs_and_templates_are_one_clear_error(tmp_path, kw, match):
    with pytest.raises(CompError, match=match):
        expand(packed(tmp_path, **kw))


def test_pack_commands_skip_finished_resume_interrupted_and_restart_the_rest(tmp_path):
    """One pack, four seeds in four states: finished (skipped), interrupted (resumed), stale
    (cleared, started again with the new one)."""
    lines = expand(packed(tmp_path, axes={"pe": ["rotary"], "seed": [0, 1, 2, 3]}))
    finished, interrupted, stale, _ = (Path(x.run_dir) for x in lines)
    for d, names in [(finished, ["eval.json", "model.safetensors", STATE_FILE]), (interrupted, ["config.json", STATE_FILE]),
                     (stale, ["config.json", "metrics.jsonl"])]:
        d.mkdir(parents=True)
        for name in names:
            (d / name).write_text("{}")
    assert TrainBase().commands(lines) == [
        ["train", "--resume", str(tmp_path / "pk" / "pe=rotary_seed={seed}"), "--seeds", "1", "--quiet"],
        [*lines[0].pack["argv"], "--seeds", "2,3"],
    ]
    assert not list(stale.iterdir())
    assert seed_run_dir(Path(lines[0].pack["run_dir"]), 1) == interrupted  # comp train --resume fills {seed}
    assert seed_run_dir(Path("runs/parity-rotary-s0"), 3) == Path("runs/parity-rotary-s3")
    with pytest.raises(CompError, match=r"give the seed's place as \{seed\}"):
        seed_run_dir(Path("runs/pe=rotary_seed=0"), 1)


def grid_file(tmp_path: Path, **data) -> Path:
    path = tmp_path / "grid.yaml"
    spec = {"name": "pk", "out": str(tmp_path / "runs"), "backend": "local", "pack": "seed", **data}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_packed_grid_trains_seeds_together_and_resubmission_skips_finished_seeds(tmp_path):
    path = grid_file(tmp_path, command=f"{TINY} --steps 10", axes={"seed": [0, 1]}, wandb=True)
    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 0, res.output
    status = grid_status(path)
    assert status["counts"] == {"done": 2} and [r["job"] for r in status["rows"]] == ["local", "local"]
    root = tmp_path / "runs" / "pk"
    for seed in (0, 1):
        run = root / f"seed={seed}"
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["train"]["seed"] == seed and cfg["train"]["wandb_group"] == "pk"
        log = (root / "_grid" / "logs" / f"seed={seed}.log").read_text()  # each seed's log has the group's output
        assert "--name 'seed={seed}'" in log and "--seeds 0,1" in log and "2 seeds, trained together" in log
    res = runner.invoke(app, ["collect", str(path), "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [(r["run"], r["seed"], r["step"]) for r in rows] == [("seed=0", 0, 10), ("seed=1", 1, 10)]

    stamps = [(root / f"seed={s}" / "model.safetensors").stat().st_mtime_ns for s in (0, 1)]
    bigger = grid_file(tmp_path, command=f"{TINY} --steps 10", axes={"seed": [0, 1, 2]}, wandb=True)
    plan = launch(bigger, dry_run=True)
    assert plan.todo == [2] and plan.tasks == [0]
    res = runner.invoke(app, ["grid", str(bigger)])
    assert res.exit_code == 0, res.output
    assert grid_status(bigger)["counts"] == {"done": 3}
    assert [(root / f"seed={s}" / "model.safetensors").stat().st_mtime_ns for s in (0, 1)] == stamps
    log = (root / "_grid" / "logs" / "seed=2.log").read_text()
    assert "already done: seed=0, seed=1" in log and "--seeds 2" in log and "--seeds 0," not in log


def metric_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.slow  # a packed training stopped and resumed in subprocesses; test_grid_slurm.py covers it on Slurm
def test_packed_task_stopped_by_sigusr1_resumes_every_seed(tmp_path):
    """SIGUSR1 to the task runner: every seed of the pack checkpoints; resubmitting resumes
    them together (comp train --resume 'seed={seed}' --seeds 0,1): no lost or repeated
    steps, and the weights of an uninterrupted multi-seed run."""
    path = grid_file(tmp_path, command=f"{TINY} --steps 200 --set ckpt_every=50", axes={"seed": [0, 1]})
    grid = load_grid(path)
    grid.dir.write_manifest(expand(grid))
    runs = [grid.run_root / f"seed={s}" for s in (0, 1)]
    task = subprocess.Popen([sys.executable, "-m", "comp.grid.task", str(grid.dir.root), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and task.poll() is None:
        if all((r / "metrics.jsonl").exists() and any(s >= 20 for s in metric_steps(r)) for r in runs):
            break
        time.sleep(0.05)
    assert task.poll() is None, task.stdout.read().decode()
    task.send_signal(signal.SIGUSR1)
    assert task.wait(60) == EXIT_INTERRUPTED, task.stdout.read().decode()
    assert [r["state"] for r in grid_status(path)["rows"]] == ["interrupted", "interrupted"]
    assert all((r / STATE_FILE).exists() and not (r / "model.safetensors").exists() for r in runs)

    res = runner.invoke(app, ["grid", str(path)])
    assert res.exit_code == 0, res.output
    assert f"--resume '{grid.run_root}/seed={{seed}}' --seeds 0,1" in grid.dir.log_path("seed=1").read_text()
    cfg = load_run_config(runs[0])
    reference = train_seeds(cfg, [0, 1], [tmp_path / "ref" / f"s{s}" for s in (0, 1)], quiet=True)
    for run, ref in zip(runs, reference):
        assert metric_steps(run) == list(range(10, 201, 10))
        ours, theirs = load_tensors(run / "model.safetensors"), load_tensors(ref.run_dir / "model.safetensors")
        for k in ours:
            torch.testing.assert_close(ours[k], theirs[k], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(command=["train", "parity", "--set", "model.attn_jitter=0.5"]),
    dict(axes={"pe": ["rotary"], "model.attn_jitter": [0.5], "seed": [0, 1]}),
])
def test_a_pack_with_attention_jitter_packs_its_seeds(tmp_path, kw):
    """Stacked training draws each seed's attention temperature from its own stream: a pack
    with attn_jitter is one task per setting, like any other pack (see test_multiseed)."""
    result = launch(packed(tmp_path / "runs", **kw), backend="local", dry_run=True, check_lines=check_command_lines)
    assert len(result.tasks) < len(result.lines)  # seeds share tasks
    assert not (tmp_path / "runs" / "pk" / "runs").exists()
