"""The memory guard: estimates, refusals with the option that lowers them, and chunked
work that gives the same results as unchunked work."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from planted import L, planted_model
from typer.testing import CliRunner

from comp.circuits.data import analysis_groups
from comp.circuits.heads import head_scores
from comp.cli.main import app
from comp.errors import CompError
from comp.evaluation import evaluate_length
from comp.model import ModelConfig, build_model
from comp.resources import BUDGET_FRACTION, ENV, available_bytes, check_fits, chunk_size, parse_bytes, row_bytes
from comp.tasks import make_task

CFG = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64), seed=0).cfg


def test_parse_bytes_and_the_override(monkeypatch):
    assert parse_bytes("1048576") == 2**20 and parse_bytes("512M") == 512 * 2**20 and parse_bytes("8GiB") == 8 * 2**30
    for bad in ["lots", "-1G", "0"]:
        with pytest.raises(CompError, match=ENV):
            parse_bytes(bad)
    monkeypatch.setenv(ENV, "3G")
    assert available_bytes("cpu") == 3 * 2**30
    monkeypatch.delenv(ENV)
    assert 0 < available_bytes("cpu") < 2**50  # /proc/meminfo (or a cgroup) answered


def test_row_bytes_counts_attention_quadratically():
    # four [heads, pos, pos] float32 copies dominate at long widths
    assert row_bytes(CFG, 2000) > 4 * CFG.n_heads * 2000**2 * 4
    assert row_bytes(CFG, 2000, cached_patterns=2) - row_bytes(CFG, 2000) == 2 * CFG.n_heads * 2000**2 * 4
    assert 3.5 < row_bytes(CFG, 2000) / row_bytes(CFG, 1000) < 4  # quadratic, plus a linear stream


def test_chunks_fit_the_budget_and_refusals_name_the_estimate_and_the_option(monkeypatch):
    monkeypatch.setenv(ENV, "100M")
    budget = BUDGET_FRACTION * 100 * 2**20
    per = chunk_size(CFG, 1000, 10_000, "cpu")
    assert 1 <= per < 10_000 and per * row_bytes(CFG, 1000) <= budget < (per + 1) * row_bytes(CFG, 1000)
    assert chunk_size(CFG, 10, 7, "cpu") == 7  # a small request runs in one pass
    assert chunk_size(CFG, 200, 10_000, "cpu", copies=6) % 6 == 0
    with pytest.raises(CompError, match=r"5000 tokens\) needs about 7\d\d\.\d MB .* than the 60\.0 MB .*; use --n 4") as e:
        chunk_size(CFG, 5000, 1, "cpu", lower="use --n 4")
    assert "\n" not in str(e.value)
    with pytest.raises(CompError, match="lower --n"):
        check_fits(2**30, "cpu", "this", "lower --n")


def test_chunked_evaluation_equals_one_pass(monkeypatch):
    model = build_model(ModelConfig(n_layers=2, n_heads=2, d_model=32, n_ctx=64), seed=0).eval()
    task = make_task("parity")
    whole = evaluate_length(model, task, 12, n=24, seed=0)
    monkeypatch.setenv(ENV, str(int(3.5 * row_bytes(model.cfg, task.seq_len(12)) / BUDGET_FRACTION)))
    assert chunk_size(model.cfg, task.seq_len(12), 24, "cpu") == 3
    chunked = evaluate_length(model, task, 12, n=24, seed=0)
    assert chunked.as_row() == pytest.approx(whole.as_row())


def test_chunked_head_scores_equal_one_pass(monkeypatch):
    model, groups = planted_model(), analysis_groups(make_task("parity"), [L], 40, seed=0)
    whole = head_scores(model, groups)
    width = groups[0].batch.tokens.shape[1]
    monkeypatch.setenv(ENV, str(int(7.5 * row_bytes(model.cfg, width, cached_patterns=2) / BUDGET_FRACTION)))
    chunked = head_scores(model, groups)  # 6 passes of 7 rows (the last has 5)
    for a, b in zip(whole, chunked):
        a, b = (x if isinstance(x, dict) else asdict(x) for x in (a, b))
        assert {k: v for k, v in a.items() if isinstance(v, float)} == pytest.approx(
            {k: v for k, v in b.items() if isinstance(v, float)}, abs=1e-6)
        assert a["component"] == b["component"]


def test_cli_refuses_what_cannot_fit_in_one_line(trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "200M")
    runner = CliRunner()
    out = tmp_path / "x.json"
    for args, option in [(["eval", "--lengths", "3000"], "evaluate shorter --lengths"),
                         (["eval", "--lengths", "4", "--n", "100000000"], "lower --n"),
                         (["heads", "--lengths", "2000"], "use shorter --lengths"),
                         (["ablate", "--lengths", "1500", "--n", "64"], "lower --n"),
                         (["patch", "--length", "1500", "--n", "64"], "lower --n")]:
        res = runner.invoke(app, [*args, "--ckpt", str(trained_run), "--json", str(out)])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, res.output)
        assert "of memory" in lines[0] and option in lines[0], (args, lines[0])
        assert not out.exists()
