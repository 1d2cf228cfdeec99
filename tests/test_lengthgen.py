"""The length-generalization study: planning, reuse and resume, evaluation, report, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from comp.cli.main import app
from comp.errors import CompError
from comp.grid.collect import collect
from comp.grid.layout import GridDir
from comp.grid.status import grid_status
from comp.io import load_tensors
from comp.lengthgen import Study, run_study
from comp.lengthgen.report import figure, markdown, multiples_rows, summarize
from comp.lengthgen.study import plan
from comp.provenance import config_hash
from comp.train import train

TINY_SETS = ["model.d_model=16", "model.n_heads=2", "train.batch_size=16", "train.threads=1", "train.eval_every=0",
             "train.final_eval_n=8", "train.warmup_steps=2", "train.ckpt_every=5", "train.log_every=5"]


@pytest.fixture
def no_png(monkeypatch):
    """Skip the PNG export (seconds of headless Chromium), tested on its own below."""
    monkeypatch.setattr("comp.lengthgen.report.write_png", lambda fig, path: None)


def study(**kw) -> Study:
    base = dict(pes=["rotary", "coupling"], seeds=[0, 1], train_lengths="1-3", test_lengths="1-6", steps=12,
                sets=TINY_SETS, n=8)
    return Study(**{**base, **kw})


def test_study_writes_rows_report_and_reuses_finished_runs(tmp_path):
    results = run_study(study(), tmp_path, quiet=True)
    rows = results["rows"]
    assert len(rows) == 2 * 2 * 6 and results["pending"] == []
    assert set(rows[0]) == {"pe", "seed", "length", "acc_generate", "acc_cot", "acc_answer"}
    assert {r["pe"] for r in rows} == {"rotary", "rotary+coupling"}  # canonical names
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == rows and saved["study"]["pes"] == ["rotary", "rotary+coupling"]
    assert saved["provenance"]["command"].startswith("python: comp.lengthgen.run_study(Study(")  # made from Python
    assert saved["provenance"]["config_sha256"] == config_hash(saved["study"])
    assert "| rotary+coupling |" in (tmp_path / "report.md").read_text()
    assert "plotly" in (tmp_path / "lengthgen.html").read_text()[:300000]
    png = tmp_path / "lengthgen.png"  # absent only where PNG export cannot work (test_png_export says why)
    assert not png.exists() or png.read_bytes()[:4] == b"\x89PNG"
    weights = tmp_path / "runs" / "parity-rotary-s0" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = run_study(study(test_lengths="1-6,9"), tmp_path, quiet=True)  # reuse: no training, one new length
    assert weights.stat().st_mtime_ns == stamp
    assert [r for r in again["rows"] if r["length"] != 9] == rows


def test_interrupted_run_is_resumed_to_the_same_weights(tmp_path, no_png):
    s = study(pes=["randomized"], seeds=[0])
    (job,) = plan(s, tmp_path / "a")
    calls = {"n": 0}

    def stop_at_7() -> bool:
        calls["n"] += 1
        return calls["n"] == 7

    assert train(job.config, job.run_dir, quiet=True, should_stop=stop_at_7).interrupted
    assert plan(s, tmp_path / "a")[0].status == "interrupted"
    run_study(s, tmp_path / "a", quiet=True)
    run_study(s, tmp_path / "b", quiet=True)  # never interrupted
    a, b = (load_tensors(tmp_path / d / "runs" / job.name / "model.safetensors") for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_free_generation_identity_holds_when_decoding(tmp_path, no_png):
    """acc_generate from teacher forcing equals real greedy decoding."""
    taught = run_study(study(seeds=[0]), tmp_path, quiet=True)["rows"]
    decoded = run_study(study(seeds=[0], decode=True), tmp_path, quiet=True)["rows"]
    assert [r["acc_generate"] for r in taught] == [r["acc_generate"] for r in decoded]
    assert any(0 < r["acc_generate"] < 1 for r in decoded)  # some rows fail: the decoding path ran


def test_plan_checks_everything_before_writing(tmp_path, no_png):
    run_study(study(seeds=[0], pes=["rotary"]), tmp_path, quiet=True)
    with pytest.raises(CompError, match="exists with other settings.*train.steps 12 there, 20 asked"):
        plan(study(seeds=[0], pes=["rotary"], steps=20), tmp_path)
    fresh = tmp_path / "fresh"
    for bad, msg in [(dict(pes=["rotary", "rope"]), "more than once"), (dict(seeds=[]), "seeds"),
                     (dict(pes=["standard"], test_lengths="1-40", sets=[*TINY_SETS, "model.n_ctx=50"]), "n_ctx=50"),
                     (dict(pes=["randomized"], test_lengths="1-40", sets=[*TINY_SETS, "model.max_position=60"]),
                      "max_position=60"),
                     (dict(task="multi"), "one task")]:
        with pytest.raises(CompError, match=msg):
            run_study(study(**bad), fresh, quiet=True)
        assert not fresh.exists()


def test_summary_table_and_chart_from_hand_made_rows():
    rows = [{"pe": pe, "seed": s, "length": n, "acc_generate": acc, "acc_cot": acc, "acc_answer": 1.0}
            for pe, accs in [("a", (1.0, 0.5)), ("b", (0.2, 0.4))] for s, acc in enumerate(accs) for n in (2, 4, 6, 8)]
    results = {"study": {"task": "parity", "pes": ["a", "b"], "seeds": [0, 1], "train_lengths": "1-2",
                         "test_lengths": "2,4,6,8", "n": 8, "eval_seed": 1, "steps": None, "sets": [],
                         "decode": False}, "rows": rows, "pending": []}
    stats = summarize(rows, "acc_generate")
    assert stats[("a", 4)] == {"mean": 0.75, "sd": pytest.approx(0.35355, abs=1e-5), "min": 0.5, "max": 1.0, "seeds": 2}
    assert multiples_rows(results) == [{"pe": "a", "1x (L=2)": "0.750 ± 0.354 [0.500]", "2x (L=4)": "0.750 ± 0.354 [0.500]",
                                        "4x (L=8)": "0.750 ± 0.354 [0.500]"},
                                       {"pe": "b", "1x (L=2)": "0.300 ± 0.141 [0.200]", "2x (L=4)": "0.300 ± 0.141 [0.200]",
                                        "4x (L=8)": "0.300 ± 0.141 [0.200]"}]
    assert "| 6 | 0.750 ± 0.354 | 0.300 ± 0.141 |" in markdown(results)
    fig = figure(results)
    upper, lower, mean = fig.data[:3]
    assert list(upper.y) == [1.0] * 4 and list(lower.y) == [0.5] * 4 and list(mean.y) == [0.75] * 4
    assert lower.fill == "tonexty" and mean.name == "a" and len(fig.data) == 6
    assert fig.layout.shapes[0].x0 == 0.5 and fig.layout.shapes[0].x1 == 2.5  # training range shaded


runner = CliRunner()


def test_cli_study_and_errors(tmp_path, no_png):
    sets = [a for s in TINY_SETS for a in ("--set", s)]
    res = runner.invoke(app, ["lengthgen", "--pe", "nope", "--seeds", "0", "--train-lengths", "1-2", "--test-lengths",
                              "1-4", "--steps", "5", "--n", "4", "--quiet", "--json", str(tmp_path / "r.json"), *sets])
    assert res.exit_code == 0, res.output
    assert "1x (L=2)" in res.output and (Path(os.environ["COMP_RUNS_DIR"]) / "lengthgen-parity" / "report.md").exists()
    assert len(json.loads((tmp_path / "r.json").read_text())["rows"]) == 4
    help_text = runner.invoke(app, ["lengthgen", "--help"]).output
    assert all(opt in help_text for opt in ["--test-lengths", "--decode", "--backend", "default: 0,1,2"])
    for args, msg in [(["--seeds", "a"], "bad seed 'a'"), (["--backend", "k8s"], "unknown backend 'k8s'"),
                      (["--partition", "gpu"], "Slurm options (--partition, --time, --sbatch ...) do not apply to "
                                               "--backend inline; use --backend slurm"),
                      (["--backend", "local", "--sbatch", "--exclusive"], "use --backend slurm"),
                      (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "device"),
                      (["--pe", "rotary+abacus"], "does not combine"), (["--test-lengths", "9-1"], "inverted"),
                      (["--extend", "500"], "--extend decides on validation lengths"),
                      (["--extend", "-5", "--val-lengths", "20-30"], "positive number of steps"),
                      (["--restarts", "2"], "--restarts decides on validation lengths"),
                      (["--restarts", "-1", "--val-lengths", "20-30"], "0 or more")]:
        res = runner.invoke(app, ["lengthgen", "--out", str(tmp_path / "x"), *args])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "x").exists()


def test_local_backend_trains_through_the_grid_and_inline_reuses_its_runs(tmp_path, no_png, capsys):
    """--backend local (worker processes, as in comp grid; grid-local is its old name): the study's
    directory is a grid (status works on it), its runs are where the study looks, made with the
    study's settings and --device (the inline backend reuses them)."""
    s, out = study(pes=["rotary"], seeds=[0], device="cpu"), tmp_path / "pilot"
    results = run_study(s, out, backend="grid-local", quiet=True, max_parallel=1)
    assert "--backend grid-local is now called --backend local" in capsys.readouterr().err
    assert results["study"]["backend"] == "local" and results["study"]["device"] == "cpu"
    assert "--device cpu" in (out / "report.md").read_text()  # the command that reproduces it names the device
    assert results["pending"] == [] and len(results["rows"]) == 6
    status = grid_status(out)
    assert status["grid"] == "pilot" and [(r["run"], r["state"]) for r in status["rows"]] == [("parity-rotary-s0", "done")]
    run = out / "runs" / "parity-rotary-s0"
    assert json.loads((run / "config.json").read_text())["train"]["wandb_group"] == "pilot"
    assert json.loads((run / "config.json").read_text())["train"]["device"] == "cpu"  # --device reached the grid
    stamp = (run / "model.safetensors").stat().st_mtime_ns
    assert run_study(s, out, quiet=True)["rows"] == results["rows"]  # inline backend: same settings, nothing trained
    assert (run / "model.safetensors").stat().st_mtime_ns == stamp


def fake_slurm(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """``sbatch`` that records its script and answers job 4242; ``squeue`` that prints queue.txt."""
    bin_dir, calls, queue = tmp_path / "bin", tmp_path / "sbatch.calls", tmp_path / "queue.txt"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncat "$2" >> {calls}\necho 4242\n')
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {queue}\n")
    for tool in ("sbatch", "squeue"):
        (bin_dir / tool).chmod(0o755)
    queue.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls, queue


def test_slurm_backend_submits_once_and_the_rerun_evaluates(tmp_path, monkeypatch, no_png):
    """--backend slurm (with a stand-in sbatch): the first call submits the runs as one array
    (seeds packed), the second (still queued) submits nothing and trains nothing here, and
    once the array task has run, the third evaluates and reports."""
    calls, queue = fake_slurm(tmp_path, monkeypatch)
    s, out = study(pes=["nope"], seeds=[0, 1]), tmp_path / "study"
    first = run_study(s, out, backend="slurm", quiet=True, pack=True, slurm={"partition": "debug", "setup": ["echo set up"]})
    assert first["rows"] == [] and first["pending"] == ["parity-nope-s0", "parity-nope-s1"]
    script = calls.read_text()
    assert "#SBATCH --array=0\n" in script and "#SBATCH --job-name=study" in script
    assert "#SBATCH --partition=debug" in script and "\necho set up\n" in script
    lines = GridDir(out).read_manifest()
    assert [(x.run_dir, x.task) for x in lines] == [(str(out / "runs" / f"parity-nope-s{i}"), 0) for i in (0, 1)]

    queue.write_text("4242 0 PENDING\n")
    res = runner.invoke(app, ["grid", "status", str(out)])
    assert res.exit_code == 0 and "2 pending" in res.output, res.output
    assert run_study(s, out, backend="slurm", quiet=True, pack=True)["pending"] == first["pending"]
    assert calls.read_text() == script  # nothing submitted again
    with pytest.raises(CompError, match="2 runs of this study are queued or running under comp grid"):
        run_study(s, out, quiet=True)  # the inline backend would train the same runs twice

    queue.write_text("")  # the array task runs (here, by hand) and leaves the queue
    task = subprocess.run([sys.executable, "-m", "comp.grid.task", str(out), "0"], capture_output=True, text=True)
    assert task.returncode == 0, task.stdout + task.stderr
    third = run_study(s, out, backend="slurm", quiet=True, pack=True)
    assert third["pending"] == [] and len(third["rows"]) == 2 * 6 and calls.read_text() == script
    assert [r["state"] for r in collect(out)["rows"]] == ["done", "done"]


def test_slurm_backend_needs_sbatch_before_writing_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    with pytest.raises(CompError, match="sbatch not found"):
        run_study(study(), tmp_path / "x", backend="slurm", quiet=True)
    assert not (tmp_path / "x").exists()


def test_selection_rules_rank_by_worst_or_mean_and_break_ties_by_order():
    from comp.lengthgen.select import select

    def rows(pe, accs):
        return [{"pe": pe, "seed": s, "length": n, "acc_generate": a} for (s, n), a in accs.items()]

    data = (rows("a", {(0, 24): 1.0, (1, 24): 0.90, (0, 32): 1.0, (1, 32): 1.0})  # min 0.90, mean 0.975
            + rows("b", {(0, 24): 0.95, (1, 24): 0.95, (0, 32): 0.95, (1, 32): 0.95})  # min 0.95, mean 0.95
            + rows("c", {(0, 24): 0.95, (1, 24): 0.95, (0, 32): 0.95, (1, 32): 0.95}))  # ties with b
    by_min = select(data, ["a", "c", "b"], [24, 32], "max-min-acc")
    assert by_min.ranking == ["c", "b", "a"] and by_min.chosen == "c" and "tie broken by the order" in by_min.why
    assert by_min.scores["a"] == {"min": 0.90, "mean": pytest.approx(0.975), "worst": [1, 24], "rows": 4}
    by_mean = select(data, ["b", "c", "a"], [24, 32], "max-mean-acc")
    assert by_mean.chosen == "a" and by_mean.ranking == ["a", "b", "c"] and "tie" not in by_mean.why
    with pytest.raises(CompError, match="no rows at validation lengths \\[48\\]"):
        select(data, ["a"], [24, 32, 48])
    with pytest.raises(CompError, match="unknown selection rule 'best'; choose one of: max-min-acc"):
        select(data, ["a"], [24], "best")


def test_validation_choice_is_written_before_only_the_chosen_encoding_is_tested(tmp_path, no_png):
    s = study(val_lengths="4-5", test_lengths="1-3,6", select="max-mean-acc")
    results = run_study(s, tmp_path, quiet=True)
    sel = json.loads((tmp_path / "selection.json").read_text())
    assert results["selection"] == sel and sel["val_lengths"] == [4, 5] and set(sel["ranking"]) == set(results["study"]["pes"])
    means = {pe: sum(r["acc_generate"] for r in results["val_rows"] if r["pe"] == pe) / 4 for pe in sel["ranking"]}
    assert sel["scores"][sel["chosen"]]["mean"] == pytest.approx(max(means.values()))
    assert {r["pe"] for r in results["rows"]} == {sel["chosen"]} and len(results["rows"]) == 2 * 4
    other = next(pe for pe in sel["ranking"] if pe != sel["chosen"])
    cache = json.loads((tmp_path / "runs" / f"parity-{other}-s0" / "lengthgen_eval.json").read_text())
    assert sorted(cache["rows"]) == ["4", "5"]  # never tested
    report = (tmp_path / "report.md").read_text()
    assert "Chosen on validation lengths 4-5" in report and "--val-lengths 4-5 --select max-mean-acc" in report
    with pytest.raises(CompError, match="overlap"):
        run_study(study(val_lengths="3-5", test_lengths="1-4"), tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()


def test_calibration_rule_keeps_a_clean_run_and_otherwise_takes_the_best_worst_row():
    from comp.lengthgen.calibrate import choose

    clean = {1.0: {"min": 1.0, "mean": 1.0, "loss": 1e-3, "worst_length": 5}}
    assert choose(clean)[0] == 1.0  # left as trained, even if another factor had a lower loss
    s = {1.0: {"min": 0.9, "mean": 0.95, "loss": 0.2, "worst_length": 5},
         1.1: {"min": 1.0, "mean": 1.0, "loss": 0.01, "worst_length": 4},
         1.25: {"min": 1.0, "mean": 1.0, "loss": 0.001, "worst_length": 4},
         2.0: {"min": 0.5, "mean": 0.9, "loss": 0.0001, "worst_length": 4}}
    factor, why = choose(s)
    assert factor == 1.25 and "0.9000 (length 5)" in why  # worst row first, then the validation loss
    s[1.1]["loss"] = s[1.25]["loss"]
    assert choose(s)[0] == 1.1  # a full tie: the smaller factor


def test_calibration_is_written_before_testing_and_test_rows_use_it(tmp_path, no_png, monkeypatch):
    import comp.lengthgen.calibrate as cal

    sets = TINY_SETS + ["model.attn_scale=logn"]
    s = study(pes=["t5+coupling"], seeds=[0], val_lengths="4-5", test_lengths="6", calibrate="logn", sets=sets)
    first = run_study(s, tmp_path, quiet=True)
    name = "parity-t5+coupling-s0"
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert first["calibration"] == saved and saved[name]["factor"] in cal.FACTORS
    assert "--calibrate logn" in (tmp_path / "report.md").read_text()
    # force the other branch: the run as trained fails its validation rows, factor 1.5 is the best
    monkeypatch.setattr(cal, "score", lambda rows: {"min": 0.5 + (rows[0].get("_f", 0)), "mean": 0.5, "loss": 1.0,
                                                    "worst_length": 4})
    real = cal.evaluate_run

    def marked(run, lengths, **kw):
        out = real(run, lengths, **kw)
        for r in out["rows"]:
            r["_f"] = 0.5 if kw["sharpen"] == 1.5 else 0.0
        return out

    monkeypatch.setattr(cal, "evaluate_run", marked)
    (tmp_path / "runs" / name / cal.RUN_FILE).unlink()
    second = run_study(s, tmp_path, quiet=True)
    assert second["calibration"][name]["factor"] == 1.5
    assert set(second["calibration"][name]["scores"]) == {f"{f:g}" for f in cal.FACTORS}
    assert [r["sharpen"] for r in second["rows"]] == [1.5]
    assert (tmp_path / "runs" / name / "lengthgen_eval_x1.5.json").exists()
    from comp.evaluation import evaluate_run
    direct = evaluate_run(str(tmp_path / "runs" / name), "6", n=8, generate=False, sharpen=1.5)["rows"][0]
    assert second["rows"][0]["acc_cot"] == direct["acc_cot"]  # the test row is the sharpened model's
    with pytest.raises(CompError, match="log\\(n\\)"):
        run_study(study(pes=["t5"], val_lengths="4-5", test_lengths="6", calibrate="logn"), tmp_path / "y", quiet=True)
    assert not (tmp_path / "y").exists()


def _study_with_validation(s: Study, out, worst: dict, monkeypatch):
    """Run study ``s`` with every run's validation rows set to ``worst[run name]`` (read live, so a
    test may change it between calls); returns the results, extension.json and the runs directory."""
    import comp.lengthgen.extend as ext

    real = ext.evaluate_job
    monkeypatch.setattr(ext, "evaluate_job", lambda job, st, lengths=None: [
        {**r, "acc_cot": worst[job.name]} for r in real(job, st, lengths)])
    results = run_study(s, out, quiet=True)
    saved = json.loads((out / "extension.json").read_text())
    assert results["extension"] == saved
    return results, saved, out / "runs"


def test_extension_continues_only_runs_with_a_validation_error_and_keeps_the_better(tmp_path, no_png, monkeypatch):
    from comp.evaluation import evaluate_run
    from comp.runs.load import load_run_config

    s = study(pes=["rotary"], seeds=[0, 1], val_lengths="4-5", test_lengths="6", extend=8)
    worst = {"parity-rotary-s0": 1.0, "parity-rotary-s1": 0.5, "parity-rotary-s1-ext8": 0.75}  # validation, by run
    first, saved, runs = _study_with_validation(s, tmp_path, worst, monkeypatch)
    assert saved["parity-rotary-s0"]["kept"] == "parity-rotary-s0" and saved["parity-rotary-s0"]["worst_after"] is None
    assert not (runs / "parity-rotary-s0-ext8").exists()  # a clean run is not continued
    child = runs / "parity-rotary-s1-ext8"
    assert saved["parity-rotary-s1"]["kept"] == child.name  # better on validation: the continued run is kept
    assert (saved["parity-rotary-s1"]["worst_before"], saved["parity-rotary-s1"]["worst_after"]) == (0.5, 0.75)
    cfg = load_run_config(child)
    assert cfg.train.steps == 8 and cfg.train.init_from == str((runs / "parity-rotary-s1").resolve())
    assert cfg.train.parent  # the parent is recorded
    assert json.loads((child / "eval.json").read_text())["step"] == 8
    direct = evaluate_run(str(child), "6", n=8, generate=False)["rows"][0]
    assert [r["acc_cot"] for r in first["rows"] if r["seed"] == 1] == [direct["acc_cot"]]  # test rows: the child's
    assert "--extend 8" in (tmp_path / "report.md").read_text()
    stamp = (child / "model.safetensors").stat().st_mtime_ns
    worst["parity-rotary-s1-ext8"] = 0.25  # worse on validation: the run as trained is kept; nothing retrains
    second = run_study(s, tmp_path, quiet=True)
    assert (child / "model.safetensors").stat().st_mtime_ns == stamp
    assert second["extension"]["parity-rotary-s1"]["kept"] == "parity-rotary-s1"
    parent_row = evaluate_run(str(runs / "parity-rotary-s1"), "6", n=8, generate=False)["rows"][0]
    assert [r["acc_cot"] for r in second["rows"] if r["seed"] == 1] == [parent_row["acc_cot"]]
    with pytest.raises(CompError, match="validation lengths"):
        run_study(study(extend=5), tmp_path / "y", quiet=True)
    with pytest.raises(CompError, match="positive"):
        run_study(study(extend=-1, val_lengths="4-5", test_lengths="6"), tmp_path / "y", quiet=True)
    assert not (tmp_path / "y").exists()


def test_restarts_train_new_initializations_until_one_is_clean_on_validation(tmp_path, no_png, monkeypatch):
    from comp.evaluation import evaluate_run
    from comp.runs.load import load_run_config

    s = study(pes=["rotary"], seeds=[0, 1], val_lengths="4-5", test_lengths="6", extend=8, restarts=3)
    worst = {"parity-rotary-s0": 1.0,  # clean: neither continued nor restarted
             "parity-rotary-s1": 0.5, "parity-rotary-s1-ext8": 0.25,  # continuation worse: as trained, then restart
             "parity-rotary-s1-restart1": 0.75, "parity-rotary-s1-restart1-ext8": 0.875,
             "parity-rotary-s1-restart2": 1.0, "parity-rotary-s1-restart3": 0.0}
    first, saved, runs = _study_with_validation(s, tmp_path, worst, monkeypatch)
    assert saved["parity-rotary-s0"]["restarts"] == [] and not (runs / "parity-rotary-s0-restart1").exists()
    e = saved["parity-rotary-s1"]
    assert e["kept"] == "parity-rotary-s1-restart2"  # the first attempt at 1.0 on validation
    assert [(a["run"], a["kept"], a["worst"]) for a in e["restarts"]] == [
        ("parity-rotary-s1-restart1", "parity-rotary-s1-restart1-ext8", 0.875),  # continued by the same rule
        ("parity-rotary-s1-restart2", "parity-rotary-s1-restart2", 1.0)]
    assert not (runs / "parity-rotary-s1-restart3").exists()  # attempts stop at the first clean one
    assert not (runs / "parity-rotary-s1-restart2-ext8").exists()
    for k in (1, 2):  # new initializations: seed + 1000 k, the study's settings, no parent
        cfg = load_run_config(runs / f"parity-rotary-s1-restart{k}")
        assert cfg.train.seed == 1 + 1000 * k and cfg.train.steps == 12 and not cfg.train.init_from
    from comp.io import load_tensors
    a, b = (load_tensors(runs / n / "model.safetensors") for n in ("parity-rotary-s1", "parity-rotary-s1-restart2"))
    assert any(not torch.equal(a[k], b[k]) for k in a)  # another model, not a copy
    direct = evaluate_run(str(runs / "parity-rotary-s1-restart2"), "6", n=8, generate=False)["rows"][0]
    assert [(r["seed"], r["acc_cot"]) for r in first["rows"] if r["seed"] == 1] == [(1, direct["acc_cot"])]
    assert "--restarts 3" in (tmp_path / "report.md").read_text()
    # no clean attempt: the highest worst row is kept (restart 1's continued run)
    worst.update({"parity-rotary-s1-restart2": 0.5, "parity-rotary-s1-restart2-ext8": 0.5,
                  "parity-rotary-s1-restart3-ext8": 0.0})
    second = run_study(s, tmp_path, quiet=True)
    e = second["extension"]["parity-rotary-s1"]
    assert e["kept"] == "parity-rotary-s1-restart1-ext8" and len(e["restarts"]) == 3
    assert [r["acc_cot"] for r in second["rows"] if r["seed"] == 1] == [
        evaluate_run(str(runs / "parity-rotary-s1-restart1-ext8"), "6", n=8, generate=False)["rows"][0]["acc_cot"]]
    with pytest.raises(CompError, match="validation lengths"):
        run_study(study(restarts=2), tmp_path / "y", quiet=True)
    with pytest.raises(CompError, match="0 or more"):
        run_study(study(restarts=-1, val_lengths="4-5", test_lengths="6"), tmp_path / "y", quiet=True)
    assert not (tmp_path / "y").exists()


def test_sharpening_multiplies_the_learned_scales():
    from comp.model import ModelConfig, build_model
    from comp.model.attention_scale import sharpen

    model = build_model(ModelConfig(encoding="t5+coupling", d_model=16, n_heads=2, attn_scale="logn"), seed=0)
    before = [b.attn.ssmax_scale.detach().clone() for b in model.blocks]
    sharpen(model, 1.25)
    for b, s in zip(model.blocks, before):
        torch.testing.assert_close(b.attn.ssmax_scale.detach(), s * 1.25)
    with pytest.raises(CompError, match="no learned log"):
        sharpen(build_model(ModelConfig(encoding="t5", d_model=16, n_heads=2), seed=0), 1.25)
