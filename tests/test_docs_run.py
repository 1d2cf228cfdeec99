"""The shell examples of README.md and docs/*.md run, at tiny sizes (:mod:`docs_runner`).

Each file's runnable blocks run in order in one scratch directory, as a reader following
the page would run them; a page that starts from a run trained elsewhere gets it from
:data:`SETUP` first. Blocks not meant to run say why in their info string.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_runner import DOCS, REPO, SHELLS, blocks, commands, grid_files, tiny, tiny_grid_file
from planted import save_planted_run
from typer.testing import CliRunner

from comp.cli.main import app


def planted_parity_run(root: Path) -> None:
    """A run that solves parity (a hand-planted circuit; tiny training would not), for the circuit pages."""
    save_planted_run(root / "runs" / "parity-rotary-s0", discovery=True)


# what a page assumes already exists: comp lines (run tiny, like its own) or a function of the scratch directory
SETUP: dict[str, list] = {
    "circuits.md": [planted_parity_run],
    "probes.md": [["train", "parity"]],
    "views.md": [["train", "parity"], ["train", "multi", "--tasks", "parity,copy"]],
}
SLOW = {"README.md", "grids.md", "lengthgen.md", "performance.md", "dynamics.md"}  # over ~10 s of tiny training
RUNNABLE = [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW else []) for p in DOCS
            if any(b.runs for b in blocks(p))]
OUTPUTS = ("--json", "--plot", "--html", "--csv")


def test_every_shell_block_runs_or_says_why_not():
    """A block with comp lines is labelled as shell; one that is not run gives its reason."""
    run = 0
    for path in DOCS:
        for block in blocks(path):
            if block.lang == "" and re.search(r"^\s*comp ", block.body, re.M):
                pytest.fail(f"{block.where}: label this block ```bash (and 'no-run: <reason>' if it is not run)")
            if block.lang in SHELLS and block.info.startswith("no-run"):
                assert re.match(r"no-run: \w", block.info), f"{block.where}: say why: ```bash no-run: <reason>"
            elif block.lang in SHELLS:
                assert commands(block), f"{block.where}: no comp line to run"
                run += 1
    assert run >= 10  # most examples run: a broken label parser must not pass


def test_tiny_keeps_the_command_and_shrinks_its_sizes():
    assert tiny(["train", "parity", "--seeds", "0-31"])[:6] == ["train", "parity", "--seeds", "0,1", "--steps", "20"]
    assert tiny(["train", "--resume", "runs/x", "--steps", "4000"]) == ["train", "--resume", "runs/x", "--steps", "40"]
    study = tiny(["lengthgen", "--pe", "a,b,c", "--seeds", "0,1,2", "--val-lengths", "24-48", "--test-lengths", "64"])
    assert study[:10] == ["lengthgen", "--pe", "a,b", "--seeds", "0", "--val-lengths", "5-6", "--test-lengths", "7-8",
                          "--steps"]
    assert tiny(["probe", "--ckpt", "r", "--n-train", "1024"]) == ["probe", "--ckpt", "r", "--n-train", "16", "--n",
                                                                  "8", "--steps", "5"]


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_the_shell_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMP_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("COMP_MEMORY_LIMIT", "4G")
    runner = CliRunner()
    lines = [("setup", args) for args in SETUP.get(path.name, [])]
    lines += [(block.where, args) for block in blocks(path) if block.runs for args in commands(block)]
    for where, args in lines:
        if callable(args):
            args(tmp_path)
            continue
        for grid in grid_files(args):
            tiny_grid_file(REPO / grid, tmp_path / grid)
        argv = tiny(args)
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, f"{where}: comp {' '.join(argv)}\n{result.output}"
        for option in OUTPUTS:
            if option in argv:
                assert (tmp_path / argv[argv.index(option) + 1]).exists(), f"{where}: {option} not written"


def test_the_lengthgen_python_block_runs(tmp_path, monkeypatch):
    """docs/lengthgen.md's Python block, with tiny runs (5 steps, width 16, 8 sequences, lengths to 6)."""
    from docs_runner import TINY_STUDY_SETS

    body = next(b.body for b in blocks(REPO / "docs" / "lengthgen.md") if b.lang == "python")
    assert 'test_lengths="1-32", steps=300)' in body
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("comp.lengthgen.report.write_png", lambda fig, path: None)  # no Chromium needed
    shrunk = body.replace('test_lengths="1-32", steps=300)', f'test_lengths="1-6", steps=5, n=8, sets={TINY_STUDY_SETS!r})')
    scope: dict = {}
    exec(compile(shrunk, "lengthgen.md", "exec"), scope)
    assert {r["pe"] for r in scope["results"]["rows"]} == {"rotary", "rotary+coupling"}
    assert (tmp_path / "runs" / "pilot" / "report.md").exists()
