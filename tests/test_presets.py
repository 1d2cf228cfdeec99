"""Presets: a named recipe under every other setting, listed in --help, checked against the documented recipe."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from comp.cli.main import app
from comp.config import build_config
from comp.errors import CompError
from comp.presets import PRESETS

runner = CliRunner()
RECIPE = ["model.t5_max_distance=16", "train.target_acc=0", "model.attn_scale=logn", "model.attn_jitter=0.75"]


def test_extrapolate_is_the_length_study_recipe_spelled_out():
    """The preset gives the config the study's --set flags give (docs/results/lengthgen/README.md)."""
    preset = build_config("parity", None, [], "extrapolate")
    spelled = build_config("parity", None, RECIPE, encoding="t5+coupling")
    assert preset.to_dict() == spelled.to_dict()
    assert preset.to_dict() != build_config("parity", None, []).to_dict()
    assert build_config("parity", None, [], "default").to_dict() == build_config("parity", None, []).to_dict()


def test_options_and_sets_override_the_preset(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"attn_jitter": 0.5}}))
    cfg = build_config("copy", config, ["model.attn_scale=none"], "extrapolate", encoding="rotary+coupling")
    assert (cfg.model.encoding, cfg.model.attn_jitter, cfg.model.attn_scale) == ("rotary+coupling", 0.5, "none")
    assert (cfg.model.t5_max_distance, cfg.train.target_acc) == (16, 0.0)  # the rest of the preset stays
    paper = build_config("parity", None, [], "paper")
    assert (paper.model.n_heads, paper.model.d_model, paper.train.lr, paper.model.encoding) == (1, 128, 3e-4, "standard")


def test_presets_are_listed_and_misuse_is_one_clear_error(tmp_path):
    res = runner.invoke(app, ["train", "--help"], terminal_width=400)
    assert all(name in res.output for name in PRESETS)
    for args, msg in [(["parity", "--preset", "fast"], "unknown preset 'fast'; choose one of: default, extrapolate"),
                      (["parity", "--preset", "nocot"], "preset nocot is for answer-only tasks (parity_nocot), not "
                                                        "parity; e.g. comp train parity_nocot --preset nocot"),
                      (["parity_nocot", "--preset", "extrapolate"], "preset extrapolate is for chain-of-thought")]:
        res = runner.invoke(app, ["train", *args, "--out", str(tmp_path)])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output
    assert not list(tmp_path.iterdir())
    with pytest.raises(CompError, match="unknown preset"):
        build_config("parity", None, [], "nope")


def test_cli_trains_with_a_preset(tmp_path):
    res = runner.invoke(app, ["train", "parity", "--preset", "extrapolate", "--steps", "2", "--batch-size", "8",
                              "--train-lengths", "1-2", "--d-model", "16", "--n-heads", "2", "--set", "final_eval_n=8",
                              "--set", "warmup_steps=1", "--out", str(tmp_path), "--name", "x", "--quiet"])
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "x" / "config.json").read_text())
    assert saved["model"]["encoding"] == "t5+coupling" and saved["model"]["attn_jitter"] == 0.75
    assert saved["train"]["target_acc"] == 0.0 and saved["model"]["d_model"] == 16
