"""Every result file records where it came from, one way: comp version, commit, package
versions, the hash of the run's settings and the command line, under "provenance"."""

from __future__ import annotations

import json
from importlib import metadata

from typer.testing import CliRunner

from comp.cli.main import app
from comp.config import environment
from comp.io import read_json
from comp.provenance import KEY, config_hash

runner = CliRunner()


def test_an_analysis_result_records_its_provenance(trained_run, tmp_path):
    out = tmp_path / "heads.json"
    args = ["heads", "--ckpt", str(trained_run), "--lengths", "2-3", "--n", "8", "--json", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    block = json.loads(out.read_text())[KEY]
    assert block["packages"]["transformer-lens"] == metadata.version("transformer-lens") != "unknown"
    assert block["packages"]["torch"] == metadata.version("torch")
    assert block["comp"] and block["git_commit"]
    config = read_json(trained_run / "config.json")
    assert block["config_sha256"] == config_hash(config) and len(block["config_sha256"]) == 64
    assert block["command"] == "comp " + " ".join(args)


def test_the_settings_hash_ignores_bookkeeping_and_sees_settings():
    config = {"task": {"name": "parity"}, "train": {"seed": 0}, "meta": {"git_commit": "a"}}
    assert config_hash(config) == config_hash({**config, "meta": {"git_commit": "b"}})
    assert config_hash(config) != config_hash({**config, "train": {"seed": 1}})


def test_runs_record_the_transformer_lens_version():
    assert environment()["transformer_lens"] == metadata.version("transformer-lens")


def test_library_results_record_the_python_call(trained_run):
    """A result made from Python, not through comp: its provenance names the call, the script's
    argv and the run's settings, and a comp command run before it in the process does not leak in."""
    from comp.circuits.heads import score_heads
    from comp.evaluation import evaluate_run
    from comp.provenance import result_dict

    assert runner.invoke(app, ["heads", "--ckpt", str(trained_run), "--lengths", "2", "--n", "4"]).exit_code == 0
    heads = score_heads(str(trained_run), lengths="2-3", n=8)
    block = heads.provenance
    assert block["command"] == f"python: comp.circuits.heads.score_heads({str(trained_run)!r}, lengths='2-3', n=8)"
    assert block["config_sha256"] == config_hash(read_json(trained_run / "config.json"))
    assert block["packages"]["transformer-lens"] == metadata.version("transformer-lens") and "argv" in block
    assert result_dict(heads)[KEY] == block and result_dict(heads)["rows"]  # JSON-ready, block included
    evaluated = evaluate_run(trained_run, "2", n=4, generate=False)  # a dict result: the block under its key
    assert evaluated[KEY]["command"] == (f"python: comp.evaluation.evaluate_run({str(trained_run)!r}, lengths='2', n=4, "
                                         "generate=False)")


def test_a_comp_command_records_its_command_line_not_the_python_call(trained_run, tmp_path):
    out = tmp_path / "e.json"
    args = ["eval", "--ckpt", str(trained_run), "--lengths", "2", "--n", "4", "--no-generate", "--json", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    block = json.loads(out.read_text())[KEY]
    assert block["command"] == "comp " + " ".join(args) and "argv" not in block


def test_patching_and_discovery_record_the_python_call(trained_run):
    """The circuit analyses called from Python carry the block too (the one --n default)."""
    import inspect

    from comp.catalog import N_SEQUENCES
    from comp.circuits.discover import discover_run
    from comp.circuits.patching import patch_run

    for fn in (patch_run, discover_run):
        assert inspect.signature(fn).parameters["n"].default == N_SEQUENCES
    patched = patch_run(str(trained_run), length=2, n=4)
    assert patched.provenance["command"] == f"python: comp.circuits.patching.patch_run({str(trained_run)!r}, length=2, n=4)"
    found = discover_run(str(trained_run), lengths="2", n=4)
    assert found.provenance["command"].startswith("python: comp.circuits.discover.discover_run(")
    assert found.provenance["config_sha256"] == config_hash(read_json(trained_run / "config.json"))
