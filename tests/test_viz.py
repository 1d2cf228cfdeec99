"""Attention views: inputs, patterns against TransformerLens, offline HTML, the CLI."""

from __future__ import annotations

import json
import re

import pytest
import torch
from typer.testing import CliRunner

from comp.cli.main import app
from comp.errors import CompError
from comp.model import ModelConfig, build_model
from comp.tasks import make_task, member_task
from comp.views.attention import (
    attention_patterns,
    attention_view,
    circuitsvis_bundle,
    one_sequence,
    parse_input,
)

runner = CliRunner()


def test_parse_input():
    assert parse_input("0110", make_task("parity")).tolist() == [0, 1, 1, 0]
    assert parse_input("3,2,10", make_task("polynomial")).tolist() == [3, 2, 10]
    assert parse_input("3 2 10", make_task("polynomial")).tolist() == [3, 2, 10]
    for bad, task in [("0120", "parity"), ("0,1", "polynomial"), ("ab", "parity"), ("", "copy")]:
        with pytest.raises(CompError):
            parse_input(bad, make_task(task))


def test_one_sequence_lays_out_the_given_input():
    batch = one_sequence(make_task("parity"), "1011")
    assert batch.tokens[0].tolist() == [16, 1, 0, 1, 1, 12, 1, 1, 0, 1]
    sampled = one_sequence(make_task("parity"), "", length=5, seed=3)
    assert int(sampled.lengths[0]) == 5
    assert torch.equal(sampled.tokens, one_sequence(make_task("parity"), "", length=5, seed=3).tokens)


def test_member_task():
    mix = make_task("multi", tasks=["parity", "copy"])
    assert member_task(mix).name == "parity" and member_task(mix, "copy").name == "copy"
    with pytest.raises(CompError, match="not in this run"):
        member_task(mix, "polynomial")


def test_patterns_equal_transformer_lens_cache():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    tokens = one_sequence(make_task("parity"), "01101").tokens[0]
    patterns = attention_patterns(model, tokens)  # [layer, head, q, k]
    _, cache = model.run_with_cache(tokens[None])
    assert patterns.shape == (2, 2, len(tokens), len(tokens))
    for layer in range(2):
        torch.testing.assert_close(patterns[layer], cache["pattern", layer][0])
    torch.testing.assert_close(patterns.sum(-1), torch.ones(2, 2, len(tokens)))


def test_page_inlines_the_bundle_once_and_loads_nothing():
    model = build_model(ModelConfig(d_model=32, n_heads=2, n_ctx=64), seed=0).eval()
    task = make_task("parity")
    page = attention_view(model, task, one_sequence(task, "011"))
    bundle = circuitsvis_bundle()
    assert page.count(bundle) == 1 and len(bundle) > 100_000
    assert not re.search(r"<script[^>]*\bsrc=", page)  # no external script
    assert not re.search(r"""(import|from)\s*["']https?://""", page)  # no module import from a CDN
    assert "unpkg.com" not in page.replace(bundle, "")
    calls = re.findall(r"CircuitsVis\.render\(\"(attention-layer-\d)\", CircuitsVis\.AttentionHeads, (\{.*?\})\);", page)
    assert [c[0] for c in calls] == ["attention-layer-0", "attention-layer-1"]
    props = json.loads(calls[0][1].replace("<\\/", "</"))
    assert props["tokens"] == ["<task>", "x1", "x2", "x3", "EoI", "s1", "s2", "s3"]
    assert props["attentionHeadNames"] == ["L0H0", "L0H1"]
    one_layer = attention_view(model, task, one_sequence(task, "011"), layer=1)
    assert "attention-layer-1" in one_layer and "attention-layer-0" not in one_layer
    with pytest.raises(CompError, match="layers 0..1"):
        attention_view(model, task, one_sequence(task, "011"), layer=2)


def test_viz_cli(tmp_path, trained_run):
    out = tmp_path / "attn.html"
    res = runner.invoke(app, ["viz", "--ckpt", str(trained_run), "--input", "0110", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "CircuitsVis.AttentionHeads" in out.read_text()
    res = runner.invoke(app, ["viz", "--ckpt", str(trained_run), "--length", "3", "--layer", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for args, message in [(["--input", "0120"], "values in 0..1"), (["--layer", "5"], "layers 0..1"),
                          (["--task", "copy"], "not in this run")]:
        bad = tmp_path / "bad.html"
        res = runner.invoke(app, ["viz", "--ckpt", str(trained_run), *args, "--out", str(bad)])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
        assert not bad.exists()


def test_probe_and_viz_are_registered_with_help():
    out = runner.invoke(app, ["--help"]).output
    assert "probe" in out and "viz" in out
    for cmd, word in [("probe", "default: 256"), ("viz", "--input")]:
        res = runner.invoke(app, [cmd, "--help"])
        assert res.exit_code == 0 and word in res.output
