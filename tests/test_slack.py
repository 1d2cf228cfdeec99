"""Slack tokens, "L" slack (as many filler tokens as the input length) above all: the layout by
hand, the vocabulary, the settings (task option, --slack, --set, config.json), bad input, and
the analyses' position classes (circuit graph, probe sites), packing and evaluation by length."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from comp.circuits.graph import position_classes
from comp.cli.main import app
from comp.config import RunConfig, TaskConfig, apply_sets
from comp.errors import CompError
from comp.evaluation import eval_batch, evaluate
from comp.model import ModelConfig, build_model
from comp.probes import find_sites, probe_model
from comp.tasks import make_task
from comp.tasks import vocab as V
from comp.tasks.base import parse_slack

runner = CliRunner()
T, E, S, P = V.TASK_TOKENS["parity_nocot"], V.EOI, V.SLACK, V.PAD
TINY = ["--steps", "30", "--batch-size", "16", "--train-lengths", "1-4", "--d-model", "32", "--n-heads", "2",
        "--quiet", "--set", "eval_n=16", "--set", "final_eval_n=16", "--set", "threads=1"]


def batch_of(task, rows):
    lengths = torch.tensor([len(r) for r in rows])
    x = torch.tensor([r + [0] * (max(lengths) - len(r)) for r in rows])
    return task.make_batch(x, lengths)


def test_slack_L_layout_by_hand():
    # x = 1 0 1 1 (parity 1) and x = 1 1 (parity 0): L slack tokens each, then s_L
    task = make_task("parity_nocot", slack="L")
    b = batch_of(task, [[1, 0, 1, 1], [1, 1]])
    assert b.tokens.tolist() == [[T, 1, 0, 1, 1, E, S, S, S, S, 1], [T, 1, 1, E, S, S, 0, P, P, P, P]]
    assert b.loss_mask.int().tolist() == [[0] * 10 + [1], [0] * 6 + [1, 0, 0, 0, 0]]
    assert b.eoi_pos.tolist() == [5, 3]
    assert b.answer_start.tolist() == b.answer_pos.tolist() == [10, 6]
    assert [task.seq_len(n) for n in (1, 4, 16)] == [5, 11, 35]  # 2L + 3
    assert task.slack_for(7) == 7 and make_task("parity_nocot", slack=3).slack_for(7) == 3
    assert task.position_labels(2) == ["<task>", "x1", "x2", "EoI", "_", "_", "s2"]
    # with a chain of thought: L slack tokens, then s_1 .. s_L
    cot = batch_of(make_task("parity", slack="L"), [[1, 0, 1]])
    assert cot.tokens.tolist() == [[V.TASK_TOKENS["parity"], 1, 0, 1, E, S, S, S, 1, 1, 0]]
    assert cot.loss_mask.int().tolist() == [[0] * 8 + [1, 1, 1]]


def test_slack_L_samples_use_the_vocabulary_and_one_slack_token_per_input():
    task = make_task("parity_nocot", slack="L")
    b = task.sample(torch.Generator().manual_seed(0), "1-16", 256)
    assert b.tokens.shape[1] == task.seq_len(16)
    assert set(b.tokens.unique().tolist()) <= {0, 1, T, E, S, P}
    assert torch.equal((b.tokens == S).sum(1), b.lengths)
    assert torch.equal(b.answer_pos, 2 * b.lengths + 2)
    x = b.tokens[:, 1:17] * (torch.arange(16)[None] < b.lengths[:, None])  # the inputs, zero past L
    assert torch.equal(b.tokens.gather(1, b.answer_pos[:, None])[:, 0], x.sum(1) % 2)


@pytest.mark.parametrize("value, expected", [(0, 0), (3, 3), ("5", 5), (" 2 ", 2), ("L", "L")])
def test_parse_slack(value, expected):
    assert parse_slack(value) == expected


@pytest.mark.parametrize("value, message", [(-1, "negative"), ("-2", "negative"), ("l", "not a number"),
                                            ("2.5", "not a number"), ("", "not a number"), (True, "not a number")])
def test_bad_slack_is_a_clear_error(value, message):
    with pytest.raises(CompError, match=message):
        make_task("parity_nocot", slack=value)


def test_slack_L_through_settings_and_config_json():
    data = {"task": {"name": "parity_nocot"}}
    apply_sets(data, ["task.slack=L"])
    cfg = RunConfig.from_dict(data)
    assert cfg.task.slack == "L" and cfg.validate().slack == "L"
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))  # config.json round trip
    assert again.task.slack == "L" and again.task.build().seq_len(16) == 35
    data = {"task": {}}
    apply_sets(data, ["task.slack=4"])
    assert RunConfig.from_dict(data).task.slack == 4
    with pytest.raises(CompError, match="not a number"):
        TaskConfig(name="parity_nocot", slack="LL")
    # the context must hold 2L + 3 tokens at the longest training length
    with pytest.raises(CompError, match="needs 35 tokens"):
        RunConfig.from_dict({"task": {"name": "parity_nocot", "slack": "L"}, "model": {"n_ctx": 30}}).validate()


@pytest.mark.parametrize("args, message", [
    (["--slack", "x"], "--slack 'x' is not a number"),
    (["--slack", "-3"], "--slack -3 is negative"),
    (["--set", "task.slack=half"], "--slack 'half' is not a number"),
])
def test_bad_slack_on_the_command_line_is_one_line_exit_2_and_nothing_written(args, message):
    res = runner.invoke(app, ["train", "parity_nocot", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1
    runs = Path(os.environ["COMP_RUNS_DIR"])
    assert not runs.exists() or not any(runs.iterdir())


def test_train_with_slack_L_saves_it_and_evaluates_by_length():
    res = runner.invoke(app, ["train", "parity_nocot", "--slack", "L", *TINY])  # packed training (the default)
    assert res.exit_code == 0, res.output
    run = Path(os.environ["COMP_RUNS_DIR"]) / "parity_nocot-rotary-s0"
    assert json.loads((run / "config.json").read_text())["task"]["slack"] == "L"
    res = runner.invoke(app, ["eval", "--ckpt", str(run), "--lengths", "2,9", "--n", "8", "--json", str(run / "e.json")])
    assert res.exit_code == 0, res.output
    rows = json.loads((run / "e.json").read_text())["rows"]
    assert [r["length"] for r in rows] == [2, 9]


def test_evaluation_by_length_scores_the_answer_after_L_slack_tokens():
    task = make_task("parity_nocot", slack="L")
    b = eval_batch(task, 9, 8, 0, "cpu")  # the fixed evaluation set of length 9
    assert b.tokens.shape[1] == 21 and (b.tokens == S).sum(1).tolist() == [9] * 8 and b.answer_pos.tolist() == [20] * 8
    # one answer per row, decoded after the L slack tokens: teacher forcing and free generation score the same token
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64)).eval()
    for r in evaluate(model, task, [3, 11], n=32, seed=0):
        assert r["acc_answer"] == r["acc_cot"] == r["acc_generate"]


def test_position_classes_and_probe_sites_with_slack_L():
    task = make_task("parity_nocot", slack="L")
    assert position_classes(task, 3) == ["input"] * 4 + ["eoi"] * 4 + ["answer"]
    # <parity_nocot> 1 0 1 1 EoI _ _ _ _ 1: the j-th slack token stands where s_j would be; the last predicts s_4
    b = batch_of(task, [[1, 0, 1, 1]])
    slack = find_sites(task, b, "slack")
    assert slack.pos.tolist() == [6, 7, 8, 9] and slack.step.tolist() == [1, 2, 3, 4]
    assert slack.s_t.tolist() == [1, 1, 0, 1] and slack.x_t.tolist() == [1, 0, 1, 1]
    answer = find_sites(task, b, "answer")
    assert answer.pos.tolist() == [9] and answer.s_t.tolist() == [1]
    # a fixed slack longer than the input: steps stop at L (the final parity)
    b = batch_of(make_task("parity_nocot", slack=4), [[1, 1]])
    assert find_sites(make_task("parity_nocot", slack=4), b, "slack").step.tolist() == [1, 2, 2, 2]
    assert len(find_sites(make_task("parity_nocot"), batch_of(make_task("parity_nocot"), [[1, 1]]), "slack")) == 0


def test_probes_add_the_slack_class_only_where_there_is_slack():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    with_slack = probe_model(model, make_task("parity_nocot", slack="L"), "s_t", "2-5", n_train=32, n_test=32, steps=20)
    assert with_slack["positions"] == ["input", "eoi", "answer", "slack"]
    cells = [r for r in with_slack["rows"] if r["position"] == "slack"]
    assert len(cells) == len(with_slack["layers"]) and all(c["n_test_sites"] > 32 for c in cells)  # L sites per row
    plain = probe_model(model, make_task("parity_nocot"), "s_t", "2-5", n_train=32, n_test=32, steps=20)
    assert plain["positions"] == ["input", "eoi", "answer"]


def test_slack_grid_expands_to_valid_train_commands_with_one_recipe():
    """The study's grid (docs/results/lengthgen/slack.md): 7 slack settings x 3 seeds, one recipe, L included."""
    from comp.cli.argv import check_command_lines
    from comp.config import build_config
    from comp.grid.spec import expand, load_grid

    lines = expand(load_grid(Path(__file__).parents[1] / "launchers" / "grids" / "parity-nocot-slack.yaml"))
    assert [x.run for x in lines[-3:]] == ["nocot-slackL-s0", "nocot-slackL-s1", "nocot-slackL-s2"] and len(lines) == 21
    check_command_lines(lines)
    argv = lines[-1].argv
    assert argv[argv.index("--slack") + 1] == "L" and "--preset" in argv and "6000" in argv
    assert build_config("parity_nocot", None, ["task.slack=L"], "nocot").task.build().seq_len(16) == 35


@pytest.mark.parametrize("pe", ["rotary", "t5+coupling"])
def test_packed_step_with_slack_L_gives_the_padded_hook_path_loss_and_gradients(pe, monkeypatch):
    from test_fused import randomise_
    from test_packed import assert_same, packed_calls, padded_and_packed

    model = build_model(ModelConfig(encoding=pe, d_model=32, n_heads=2, n_ctx=64, max_position=48), seed=1).train()
    randomise_(model)
    calls = packed_calls(monkeypatch)
    batch = make_task("parity_nocot", slack="L").sample(torch.Generator().manual_seed(4), "1-12", 40)
    assert_same(padded_and_packed(model, batch))
    assert len(calls) == 1  # packed, not length buckets
