"""CLI success and error paths: one clear line, exit code 2, nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comp.cli.main import app

runner = CliRunner()
TINY = ["--steps", "30", "--batch-size", "16", "--train-lengths", "1-3", "--d-model", "32", "--n-heads", "2",
        "--n-ctx", "64", "--quiet", "--set", "eval_n=16", "--set", "final_eval_n=16", "--set", "threads=1"]


def runs() -> Path:
    return Path(os.environ["COMP_RUNS_DIR"])


def invoke(*args):
    return runner.invoke(app, list(args))


def test_help_lists_tasks_encodings_and_defaults():
    out = invoke("train", "--help").output
    for word in ["parity_nocot", "polynomial", "multi", "rotary", "alibi", "nope", "default: 2000"]:
        assert word in out, word
    assert invoke("--help").exit_code == 0
    for cmd in ["train", "eval"]:
        assert invoke(cmd, "--help").exit_code == 0


def test_train_then_eval_with_json_and_plot(tmp_path):
    res = invoke("train", "parity", *TINY)
    assert res.exit_code == 0, res.output
    assert (runs() / "parity-rotary-s0" / "model.safetensors").exists()
    assert "acc_generate" in res.output
    out = tmp_path / "e.json"
    res = invoke("eval", "--ckpt", "parity-rotary-s0", "--lengths", "1-3,5", "--n", "16", "--json", str(out),
                 "--plot", str(tmp_path / "e.html"))
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [r["length"] for r in data["rows"]] == [1, 2, 3, 5]
    assert {"length", "acc_cot", "acc_answer", "acc_generate"} <= set(data["rows"][0])
    assert "plotly" in (tmp_path / "e.html").read_text()[:200000]


def printed_rows(output: str, first: str) -> list[list[str]]:
    """The cells of the printed table rows whose first cell is ``first``."""
    rows = [[c.strip() for c in line.strip().strip("│").split("│")] for line in output.splitlines() if "│" in line]
    return [r for r in rows if r[0] == first]


def three(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def test_printed_tables_show_the_saved_values(tmp_path):
    """comp train prints eval.json's rows; comp eval prints its --json rows, value for value."""
    res = invoke("train", "parity", *TINY, "--eval-lengths", "1-4")
    assert res.exit_code == 0, res.output
    saved = json.loads((runs() / "parity-rotary-s0" / "eval.json").read_text())
    assert f"parity-rotary-s0: step {saved['step']} ({saved['stop_reason']})" in res.output
    assert printed_rows(res.output, "parity") == [
        ["parity", str(r["length"]), *(three(r[k]) for k in ("acc_generate", "acc_cot", "acc_answer", "loss"))]
        for r in saved["rows"]
    ]
    assert [r["length"] for r in saved["rows"]] == [1, 2, 3, 4]
    res = invoke("eval", "--ckpt", "parity-rotary-s0", "--lengths", "2,6", "--n", "16", "--json", str(tmp_path / "e.json"))
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert printed_rows(res.output, "parity") == [
        ["parity", str(r["length"]), *(three(r[k]) for k in ("acc_generate", "acc_generate_answer", "acc_cot",
                                                             "acc_answer", "loss"))]
        for r in data["rows"]
    ]
    assert [r["length"] for r in data["rows"]] == [2, 6] and data["n"] == 16 and data["seed"] == 12345


def test_eval_past_learned_table_is_a_clear_error():
    assert invoke("train", "parity", *TINY, "--pe", "standard").exit_code == 0
    res = invoke("eval", "--ckpt", "parity-standard-s0", "--lengths", "1-40", "--n", "4")
    assert res.exit_code == 2 and "n_ctx=64" in res.output and "Traceback" not in res.output


def test_relative_encoding_evaluates_past_n_ctx():
    assert invoke("train", "parity", *TINY, "--pe", "alibi").exit_code == 0
    res = invoke("eval", "--ckpt", "parity-alibi-s0", "--lengths", "40", "--n", "4", "--no-generate")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "parityy"], "unknown task 'parityy'"),
        (["train", "parity", "--pe", "ropee"], "unknown positional encoding 'ropee'"),
        (["train", "parity", "--train-lengths", "16-1"], "inverted"),
        (["train", "parity", "--train-lengths", ""], "empty length"),
        (["train", "parity", "--n-ctx", "20", "--pe", "standard"], "n_ctx=20"),
        (["train", "parity", "--n-ctx", "20", "--pe", "rotary"], "n_ctx=20"),
        (["train", "parity", "--set", "train.lr_max=3"], "unknown setting 'train.lr_max'"),
        (["train", "multi"], "--tasks"),
        (["train"], "missing TASK"),
        (["eval", "--ckpt", "nope-such-run"], "no run 'nope-such-run'"),
        (["eval", "--ckpt", "x", "--lengths", "9-3"], "inverted"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(args, message):
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1
    assert not runs().exists() or not any(runs().iterdir())


def test_unknown_config_file_keys(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"model": {"d_modle": 64}}))
    res = invoke("train", "parity", "--config", str(cfg))
    assert res.exit_code == 2 and "unknown settings model keys ['d_modle']" in res.output
    cfg.write_text("{not json")
    res = invoke("train", "parity", "--config", str(cfg))
    assert res.exit_code == 2 and "not valid JSON" in res.output


def test_missing_truncated_and_foreign_checkpoints(tmp_path):
    assert invoke("train", "parity", *TINY).exit_code == 0
    run = runs() / "parity-rotary-s0"
    # truncated weights
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    res = invoke("eval", "--ckpt", str(run), "--n", "4")
    assert res.exit_code == 2 and "unreadable" in res.output
    # missing weights
    (run / "model.safetensors").unlink()
    res = invoke("eval", "--ckpt", str(run), "--n", "4")
    assert res.exit_code == 2 and "does not exist" in res.output
    # foreign directory: a config.json that comp did not write
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"n_layers": 2}))
    res = invoke("eval", "--ckpt", str(foreign))
    assert res.exit_code == 2 and "not a comp run" in res.output
    # a pickle file named like our checkpoint is never unpickled, only rejected
    (foreign / "config.json").write_text((run / "config.json").read_text())
    (foreign / "model.safetensors").write_bytes(b"\x80\x04\x95pickle-bytes")
    res = invoke("eval", "--ckpt", str(foreign), "--n", "4")
    assert res.exit_code == 2 and "unreadable" in res.output


def test_existing_run_is_not_overwritten():
    assert invoke("train", "parity", *TINY).exit_code == 0
    res = invoke("train", "parity", *TINY)
    assert res.exit_code == 2 and "already exists" in res.output and "--resume" in res.output


def test_resume_from_cli_extends_steps():
    assert invoke("train", "parity", *TINY).exit_code == 0
    run = runs() / "parity-rotary-s0"
    res = invoke("train", "--resume", str(run), "--steps", "40", "--quiet")
    assert res.exit_code == 0, res.output
    assert "step 40" in res.output
    res = invoke("train", "--resume", str(runs() / "missing"))
    assert res.exit_code == 2 and "does not exist" in res.output


def test_wandb_offline_logs_and_never_breaks_training(monkeypatch):
    res = invoke("train", "parity", *TINY, "--wandb", "--name", "wb")
    assert res.exit_code == 0, res.output
    assert list((runs() / "wb" / "wandb").glob("offline-run-*"))
    # online without a login or a network: training still finishes
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")
    res = invoke("train", "parity", *TINY, "--wandb", "--name", "wb2")
    assert res.exit_code == 0, res.output
    assert (runs() / "wb2" / "eval.json").exists()
