"""Grid files, manifests, run states and collected results (no training here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from comp.cli.argv import check_command_lines
from comp.cli.main import app
from comp.errors import CompError
from comp.grid.bases import TrainBase, flatten_results
from comp.grid.collect import collect, write_csv
from comp.grid.launch import launch
from comp.grid.layout import GridDir
from comp.grid.spec import expand, load_grid, open_grid
from comp.grid.status import run_state
from comp.io import save_tensors
from comp.runs.files import STATE_FILE, clear_unstarted, run_status
from comp.signals import EXIT_INTERRUPTED, stop_on_signals
from comp.train import train

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def grid_file(tmp_path: Path, **data) -> Path:
    spec = {"name": "g", "command": "train parity --steps 5", "axes": {"pe": ["rotary", "alibi"], "seed": [0, 1]},
            "out": str(tmp_path / "runs")}
    spec.update(data)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_expansion_order_names_and_arguments(tmp_path):
    grid = load_grid(grid_file(tmp_path, axes={"pe": ["rotary", "alibi"], "seed": [0, 1],
                                               "train.weight_decay": [0.1], "attn_only": [True]}, wandb=True))
    lines = expand(grid)
    assert [x.run for x in lines] == [
        "pe=rotary_seed=0_train.weight_decay=0.1_attn_only=true", "pe=rotary_seed=1_train.weight_decay=0.1_attn_only=true",
        "pe=alibi_seed=0_train.weight_decay=0.1_attn_only=true", "pe=alibi_seed=1_train.weight_decay=0.1_attn_only=true"]
    assert [x.index for x in lines] == [0, 1, 2, 3]
    x = lines[2]
    assert x.axes == {"pe": "alibi", "seed": 0, "train.weight_decay": 0.1, "attn_only": True}
    assert x.run_dir == str(tmp_path / "runs" / "g" / x.run)
    assert x.argv == ["train", "parity", "--steps", "5", "--pe", "alibi", "--seed", "0",
                      "--set", "train.weight_decay=0.1", "--attn-only", "--name", x.run,
                      "--out", str(tmp_path / "runs" / "g"), "--quiet", "--wandb-group", "g", "--wandb"]
    check_command_lines(lines)  # every line parses as a comp train command
    assert expand(grid) == lines  # stable


def test_placeholders_and_generic_commands(tmp_path):
    grid = load_grid(grid_file(tmp_path, command=["eval", "--ckpt", "runs/{task}-rotary-s0", "--lengths", "1-8",
                                                  "--json", "{run_dir}/result.json"],
                               axes={"task": ["parity", "copy"], "n": [16]}))
    lines = expand(grid)
    assert lines[1].argv == ["eval", "--ckpt", "runs/copy-rotary-s0", "--lengths", "1-8", "--json",
                             f"{lines[1].run_dir}/result.json", "--n", "16"]
    check_command_lines(lines)
    study = expand(load_grid(grid_file(tmp_path, command="lengthgen --task parity --out {run_dir} --json "
                                       "{run_dir}/result.json", axes={"pe": ["rotary", "alibi"], "seeds": ["0-2"]})))
    assert study[1].argv[-4:] == ["--pe", "alibi", "--seeds", "0-2"] and study[1].run == "pe=alibi_seeds=0-2"
    check_command_lines(study)  # lengthgen (or any other comp command) works as a base
    with pytest.raises(CompError, match=r"unknown placeholder\(s\) \['model'\]"):
        expand(load_grid(grid_file(tmp_path, command="eval --ckpt {model}")))


def test_run_names_are_path_and_wandb_safe_and_unique(tmp_path):
    lines = expand(load_grid(grid_file(tmp_path, command="train multi", axes={"tasks": [["parity", "copy"], "a b/c"]})))
    assert [x.run for x in lines] == ["tasks=parity+copy", "tasks=a-b-c"]
    assert lines[0].argv[2:4] == ["--tasks", "parity,copy"]
    with pytest.raises(CompError, match="share the name 'x=a-b'"):
        expand(load_grid(grid_file(tmp_path, axes={"x": ["a b", "a/b"]})))


@pytest.mark.parametrize("data,match", [
    ({"axes": {"seed": []}}, "non-empty list"),
    ({"axes": [1, 2]}, "must map axis names"),
    ({"colour": "red"}, r"unknown key\(s\) colour.*valid keys: name, command"),
    ({"command": None}, "needs 'command'"),
    ({"backend": "k8s"}, "unknown backend 'k8s'"),
    ({"name": "a/b"}, "plain directory name"),
    ({"max_parallel": -1}, "max_parallel"),
    ({"slurm": {"gpu": 1}}, r"unknown slurm option\(s\) gpu; valid options: partition"),
    ({"command": "train parity --name x"}, "sets --name of every train run itself"),
])
def test_bad_grid_files_are_one_clear_error(tmp_path, data, match):
    with pytest.raises(CompError, match=match):
        expand(load_grid(grid_file(tmp_path, **data)))


def test_command_lines_are_parsed_before_anything_is_written(tmp_path):
    path = grid_file(tmp_path, axes={"n_layer": [1, 2]})
    res = runner.invoke(app, ["grid", str(path), "--backend", "local"])
    assert res.exit_code == 2 and "No such option: --n-layer" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["grid", str(grid_file(tmp_path, command="fly parity"))])
    assert res.exit_code == 2 and "unknown base command 'fly'" in res.output
    res = runner.invoke(app, ["grid", str(grid_file(tmp_path, slurm={"partitions": "gpu"}))])
    assert res.exit_code == 2 and "valid options: partition, time, gpus, cpus, mem" in res.output
    assert not (tmp_path / "runs").exists()


def test_dry_run_prints_manifest_and_script_and_writes_nothing(tmp_path):
    res = runner.invoke(app, ["grid", "run", str(grid_file(tmp_path, max_parallel=3)), "--dry-run", "--partition",
                              "gpu", "--time", "10", "--sbatch", "--exclusive", "--setup", "module load cuda"])
    assert res.exit_code == 0, res.output
    assert "pe=alibi_seed=1" in res.output and "#SBATCH --array=0-3%3" in res.output
    assert "#SBATCH --partition=gpu" in res.output and "#SBATCH --exclusive" in res.output
    assert "#SBATCH --time=10" in res.output and "comp.grid.task" in res.output and "\nmodule load cuda\n" in res.output
    assert not (tmp_path / "runs").exists()


def test_example_grid_expands_and_parses():
    grid = load_grid(ROOT / "launchers" / "grids" / "parity-pe.yaml")
    lines = expand(grid)
    assert len(lines) == 5 * 3 * 2 and grid.wandb and grid.slurm["time"] == "00:30:00"
    check_command_lines(lines)
    assert launch(ROOT / "launchers" / "grids" / "parity-pe.yaml", dry_run=True).script.count("--array=0-29%8") == 1


def test_run_status_follows_a_real_training(tiny, tmp_path):
    """new -> stale (config only) -> cleared -> interrupted (checkpoint) -> finished, from the trainer's own files."""
    run = tmp_path / "run"
    assert run_status(run) == "new"
    calls = []
    result = train(tiny(steps=20), run, quiet=True, should_stop=lambda: calls.append(1) or len(calls) == 3)
    assert result.interrupted and run_status(run) == "interrupted" and (run / STATE_FILE).exists()
    assert train(tiny(steps=20), run, resume=True, quiet=True).state.step == 20 and run_status(run) == "finished"
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    (stale / "metrics.jsonl").write_text("{}\n")
    assert run_status(stale) == "stale"
    clear_unstarted(stale)
    assert run_status(stale) == "new" and not list(stale.iterdir())


def test_task_runner_starts_without_torch():
    code = "import sys, comp.grid.task; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def write_state(grid: GridDir, line, record: dict) -> None:
    grid.write_record(line.run, {"run": line.run, "index": line.index, **record})


def test_run_states_from_records_queue_and_files(tmp_path):
    grid = load_grid(grid_file(tmp_path))
    lines, gdir = expand(grid), grid.dir
    a, b, c, d = lines
    assert {run_state(gdir, x, {}) for x in lines} == {"new"}
    assert run_state(gdir, a, {0: "PENDING"}) == "pending" and run_state(gdir, a, {0: "RUNNING"}) == "running"
    write_state(gdir, a, {"state": "running", "job": "12_0", "host": "elsewhere", "pid": 1})
    assert run_state(gdir, a, {0: "RUNNING"}) == "running"
    assert run_state(gdir, a, {}) == "failed"  # gone from the queue without a word: killed
    assert run_state(gdir, a, None) == "running"  # no Slurm to ask: trust the record
    write_state(gdir, b, {"state": "running", "job": "local", "host": os.uname().nodename, "pid": os.getpid()})
    assert run_state(gdir, b, None) == "running"
    write_state(gdir, b, {"state": "running", "job": "local", "host": os.uname().nodename, "pid": 2 ** 22 + 7})
    assert run_state(gdir, b, None) == "failed"
    write_state(gdir, c, {"state": "requeued", "rc": 0})
    assert run_state(gdir, c, {2: "PENDING"}) == "pending" and run_state(gdir, c, {}) == "interrupted"
    write_state(gdir, d, {"state": "interrupted", "rc": EXIT_INTERRUPTED})
    assert run_state(gdir, d, {}) == "interrupted"
    Path(d.run_dir).mkdir(parents=True)
    Path(d.run_dir, "eval.json").write_text("{}")
    assert run_state(gdir, d, {}) == "interrupted"  # eval.json alone is not a finished run
    Path(d.run_dir, "model.safetensors").write_bytes(b"x")
    assert run_state(gdir, d, {}) == "done"


def test_train_base_resumes_from_a_checkpoint_and_restarts_a_run_without_one(tmp_path):
    line = expand(load_grid(grid_file(tmp_path)))[0]
    run_dir = Path(line.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    (run_dir / "metrics.jsonl").write_text('{"step": 10}\n')
    assert TrainBase().commands([line]) == [line.argv]  # no checkpoint: start over, from a clean directory
    assert not (run_dir / "config.json").exists() and not (run_dir / "metrics.jsonl").exists()
    (run_dir / STATE_FILE).write_bytes(b"x")
    assert TrainBase().commands([line]) == [["train", "--resume", str(run_dir), "--quiet"]]


def test_collect_flattens_results_by_length(tmp_path):
    grid = load_grid(grid_file(tmp_path))
    lines = expand(grid)
    done = Path(lines[1].run_dir)
    done.mkdir(parents=True)
    rows = [{"task": "parity", "length": L, "n": 8, "acc_cot": 1.0, "acc_answer": 1.0, "acc_generate": acc,
             "acc_generate_answer": 1.0, "loss": 0.1} for L, acc in [(1, 1.0), (2, 0.5)]]
    (done / "eval.json").write_text(json.dumps({"run": "x", "step": 5, "stop_reason": "steps", "rows": rows}))
    save_tensors(done / "model.safetensors", {"w": torch.ones(1)})  # collect checks the weights are whole
    (done / "metrics.jsonl").write_text('{"step": 5, "loss": 0.25}\n{"step": 5, "eval_min": 0.5}\n')
    GridDir(grid.out / "g").write_manifest(lines)
    result = collect(grid.out / "g")
    assert result["axes"] == ["pe", "seed"]
    assert [r["state"] for r in result["rows"]] == ["new", "done", "new", "new"]
    row = result["rows"][1]
    assert row["pe"] == "rotary" and row["seed"] == 1 and row["step"] == 5 and row["final_loss"] == 0.25
    assert row["acc_generate_L2"] == 0.5 and row["acc_cot_L1"] == 1.0 and "n_L1" not in row
    assert row["mean_acc_generate"] == 0.75 and row["min_acc_generate"] == 0.5
    write_csv(result["rows"], tmp_path / "r.csv")
    header, *body = (tmp_path / "r.csv").read_text().splitlines()
    assert header.startswith("run,state,pe,seed,") and len(body) == 4 and body[1].startswith("pe=rotary_seed=1,done")
    several = flatten_results({"rows": [{"task": "parity", "length": 1, "acc_generate": 1.0},
                                        {"task": "copy", "length": 1, "acc_generate": 0.0}]})
    assert several["parity.acc_generate_L1"] == 1.0 and several["copy.acc_generate_L1"] == 0.0


def test_grid_is_found_by_file_directory_or_name(tmp_path, monkeypatch):
    path = grid_file(tmp_path)
    monkeypatch.setenv("COMP_RUNS_DIR", str(tmp_path / "runs"))
    gdir, lines = open_grid(path)
    gdir.write_manifest(lines)
    assert open_grid(gdir.root)[1] == lines and open_grid("g")[1] == lines
    with pytest.raises(CompError, match="no grid 'nope'"):
        open_grid("nope")
    res = runner.invoke(app, ["grid", "status", "g", "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s.json").read_text())["counts"] == {"new": 4}
    res = runner.invoke(app, ["collect", "g", "--csv", str(tmp_path / "c.txt")])
    assert res.exit_code == 2 and "should end in .csv" in res.output


def test_stop_on_signals_sets_the_flag_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    with stop_on_signals() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop()
    assert signal.getsignal(signal.SIGUSR1) is before


def test_comp_train_checkpoints_and_exits_75_on_sigusr1(tmp_path):
    """A signal mid-run: comp train saves a checkpoint at once and says how to continue."""
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    res = runner.invoke(app, ["train", "parity", "--steps", "100000", "--batch-size", "8", "--train-lengths", "1-3",
                              "--d-model", "16", "--n-heads", "1", "--n-ctx", "16", "--quiet", "--out", str(tmp_path),
                              "--set", "eval_every=0", "--set", "threads=1"])
    timer.cancel()
    assert res.exit_code == EXIT_INTERRUPTED, res.output
    assert "checkpoint saved, continue with: comp train --resume" in res.output
    run = tmp_path / "parity-rotary-s0"
    assert (run / STATE_FILE).exists() and not (run / "model.safetensors").exists()


def test_dilution_grid_expands_to_valid_train_commands():
    """The fix's ablation grid (docs/results/lengthgen): every line parses as a comp train command."""
    grid = load_grid(ROOT / "launchers" / "grids" / "parity-dilution.yaml")
    lines = expand(grid)
    assert len(lines) == 2 * 3 * 3
    check_command_lines(lines)
    argv = " ".join(lines[-1].argv)
    assert lines[-1].run == "parity-t5c-logn-j0.75-s2" and "model.attn_scale=logn" in argv and "model.attn_jitter=0.75" in argv


def test_tenseeds_grid_packs_ten_seeds_of_the_extrapolate_preset(tmp_path):
    """The 10-seed study's grid (docs/results/lengthgen/tenseeds.md): one packed task whose
    runs are configured as the study's --set flags configure them."""
    from comp.config import build_config

    grid = load_grid(ROOT / "launchers" / "grids" / "parity-tenseeds.yaml")
    lines = expand(grid)
    assert [x.run for x in lines] == [f"parity-t5+coupling-s{s}" for s in range(10)] and {x.task for x in lines} == {0}
    check_command_lines(lines)
    assert "--preset extrapolate" in " ".join(lines[0].pack["argv"])
    recipe = ["model.t5_max_distance=16", "train.target_acc=0", "model.attn_scale=logn", "model.attn_jitter=0.75"]
    assert (build_config("parity", None, ["train.threads=2"], "extrapolate").to_dict()
            == build_config("parity", None, ["train.threads=2", *recipe], encoding="t5+coupling").to_dict())


def test_a_grid_changed_since_submission_is_explained_not_mixed(tmp_path):
    path = grid_file(tmp_path)
    grid = load_grid(path)
    grid.dir.write_manifest(expand(grid))  # submitted: pe x seed
    assert not launch(path, dry_run=True).change  # resubmitting the same file: no change
    more = launch(grid_file(tmp_path, axes={"pe": ["rotary", "alibi"], "seed": [0, 1, 2]}), dry_run=True)
    assert more.change.new == ["pe=rotary_seed=2", "pe=alibi_seed=2"] and not more.change.mixes  # more seeds: fine
    assert "2 new runs" in more.change.explain()
    for data, message in [
        ({"axes": {"pe": ["rotary", "alibi"], "seed": [0, 1], "lr": [0.001]}}, "axes added: lr"),
        ({"axes": {"pe": ["rotary", "alibi"]}}, "axes removed: seed"),
        ({"command": "train parity --steps 6"}, "4 runs keep their name but change their command"),
    ]:
        changed = grid_file(tmp_path, **data)
        with pytest.raises(CompError, match=f"grid g changed since it was submitted \\({message}.*new name") as e:
            launch(changed, dry_run=True)
        assert "\n" not in str(e.value)
        with pytest.raises(CompError, match=message):
            open_grid(changed)  # status and collect of the changed file
        assert [x.run for x in open_grid(grid.dir.root)[1]] == [x.run for x in expand(grid)]  # the submitted grid
        res = runner.invoke(app, ["grid", str(changed), "--dry-run"])
        assert res.exit_code == 2 and res.output.count("\n") == 1 and message in res.output, res.output
    assert GridDir(grid.dir.root).read_manifest() == expand(grid)  # nothing rewritten


def test_collect_reports_corrupt_runs_and_collects_the_rest(tmp_path):
    import torch

    from comp.io import save_tensors

    grid = load_grid(grid_file(tmp_path))
    lines = expand(grid)
    rows = [{"task": "parity", "length": 1, "acc_generate": 1.0}]
    for line in lines:
        Path(line.run_dir).mkdir(parents=True)
        (Path(line.run_dir) / "eval.json").write_text(json.dumps({"step": 5, "rows": rows}))
        save_tensors(Path(line.run_dir) / "model.safetensors", {"w": torch.ones(64)})
    a, b, c, d = (Path(x.run_dir) for x in lines)
    (a / "eval.json").write_text('{"step": 5, "rows": [')  # half-written
    whole = (c / "model.safetensors").read_bytes()
    (c / "model.safetensors").write_bytes(whole[:-10])  # half-copied weights
    grid.dir.write_manifest(lines)
    grid.dir.write_record(lines[3].run, {"state": "done"})
    grid.dir.record_path(lines[3].run).write_text("{not json")  # a corrupt run record
    (d / "eval.json").unlink()  # (read when the files do not settle the state)
    result = collect(grid.dir.root)
    assert [r["state"] for r in result["rows"]] == ["corrupt", "done", "corrupt", "corrupt"]
    assert result["rows"][1]["acc_generate_L1"] == 1.0
    problems = [r.get("problem", "") for r in result["rows"]]
    assert "Expecting value" in problems[0] or "JSON" in problems[0], problems[0]
    assert "truncated" in problems[2] and "run record" in problems[3]
    res = runner.invoke(app, ["collect", str(grid.dir.root), "--csv", str(tmp_path / "c.csv")])
    assert res.exit_code == 0 and res.output.count("corrupt, not collected") == 3, res.output
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 5


@pytest.mark.parametrize("name, task, seeds, sets", [
    ("copy-tenseeds", "copy", range(10), []),
    ("polynomial-tenseeds", "polynomial", range(10), []),
    ("parity-fresh", "parity", range(10, 20), []),
    ("parity-confirm", "parity", range(20, 30), []),
    ("copy-fresh", "copy", range(10, 20), []),
    ("polynomial-fresh", "polynomial", range(10, 20), []),
    ("copy-confirm", "copy", range(20, 30), []),
    ("polynomial-confirm", "polynomial", range(20, 30), []),
])
def test_study_grids_configure_runs_as_their_lengthgen_commands(name, task, seeds, sets):
    """Issue 13's grids (launchers/grids/): each run is the run comp lengthgen plans for the same study,
    so the study reuses what the grid trained."""
    from comp.config import build_config

    grid = load_grid(ROOT / "launchers" / "grids" / f"{name}.yaml")
    lines = expand(grid)
    assert [x.run for x in lines] == [f"{task}-t5+coupling-s{s}" for s in seeds]
    check_command_lines(lines)
    recipe = ["model.t5_max_distance=16", "train.target_acc=0", "model.attn_scale=logn", "model.attn_jitter=0.75"]
    assert (build_config(task, None, ["train.threads=1"], "extrapolate").to_dict()
            == build_config(task, None, ["train.threads=1", *recipe], encoding="t5+coupling").to_dict())


def test_fair_grid_names_its_runs_as_the_study_does():
    grid = load_grid(ROOT / "launchers" / "grids" / "parity-fair.yaml")
    lines = expand(grid)
    assert len(lines) == 12 and lines[0].run == "parity-standard-s0" and lines[-1].run == "parity-rotary+randomized-s0"
    check_command_lines(lines)
    assert all("--steps 6000" in " ".join(x.argv) for x in lines)
