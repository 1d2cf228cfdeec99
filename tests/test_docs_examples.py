"""The examples in README.md and docs/*.md run as written.

- every ``comp ...`` line of a shell block parses with the CLI (a usage synopsis, with
  ``[...]``, ``a|b`` or ``...``, is skipped): a renamed option or a flag the command does
  not take fails here, not for the reader;
- the grid file of docs/grids.md is accepted by ``comp grid --dry-run`` (real shell: the
  ``comp`` script in a subprocess);
- every Python block has no undefined name (ruff F821), and the circuits block runs on a
  tiny trained run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import docs_runner
import pytest
import yaml
from docs_runner import DOCS, REPO
from typer.main import get_command

from comp.cli.common import click
from comp.cli.main import app

SHELL = ("bash", "sh", "shell", "console", "")


def blocks(path: Path, langs: tuple[str, ...]) -> list[str]:
    """The bodies of ``path``'s fenced blocks in one of ``langs`` (run or not: every comp line must parse)."""
    return [b.body for b in docs_runner.blocks(path) if b.lang in langs]


def comp_lines() -> list[tuple[str, list[str]]]:
    """(file name, arguments) of every runnable ``comp`` line in a shell block."""
    found = []
    for path in DOCS:
        for body in blocks(path, SHELL):
            for line in body.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip().removeprefix("$ ").strip()
                if not line.startswith("comp ") or re.search(r"\[|\.\.\.|\w\|\w", line):
                    continue
                args = shlex.split(line)[1:]
                cut = [i for i, a in enumerate(args) if a in ("|", "&&", ";", ">")]
                found.append((path.name, args[: cut[0]] if cut else args))
    return found


def parse(args: list[str]) -> None:
    """Parse ``comp ARGS`` down to its command, as the CLI would, without running it."""
    command, rest = get_command(app), list(args)
    while getattr(command, "commands", None):
        if rest and rest[0] in command.commands:
            command, rest = command.commands[rest[0]], rest[1:]
        elif rest and not rest[0].startswith("-") and "run" in command.commands:  # comp grid FILE
            command = command.commands["run"]
        else:
            return  # a group's own --help
    command.make_context("comp", rest)


def test_every_documented_comp_line_parses():
    lines = comp_lines()
    assert len(lines) > 30  # the docs are full of them: a broken extractor must not pass
    bad = []
    for name, args in lines:
        try:
            parse(args)
        except click.exceptions.ClickException as e:
            bad.append(f"{name}: comp {shlex.join(args)}: {e.format_message()}")
    assert not bad, "\n".join(bad)


def test_the_documented_grid_file_dry_runs(tmp_path):
    spec = yaml.safe_load(blocks(REPO / "docs" / "grids.md", ("yaml",))[0])
    spec["out"] = str(tmp_path / "runs")
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(spec))
    comp = shutil.which("comp") or pytest.skip("the comp script is not installed")
    done = subprocess.run([comp, "grid", str(tmp_path / "grid.yaml"), "--dry-run"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "72 runs in 24 tasks" in done.stdout and "--attn-only" in done.stdout, done.stdout
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p, ("python",))], ids=lambda p: p.name)
def test_python_blocks_name_nothing_undefined(path):
    ruff = shutil.which("ruff") or pytest.skip("ruff is not installed")
    for body in blocks(path, ("python",)):
        done = subprocess.run([ruff, "check", "--select", "F821", "--stdin-filename", "block.py", "-"], input=body,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout


def test_the_circuits_python_block_runs(trained_run, monkeypatch):
    body = blocks(REPO / "docs" / "circuits.md", ("python",))[0]
    assert 'load_run("parity-rotary-s0")' in body
    monkeypatch.setattr(sys, "argv", ["docs"])
    scope: dict = {}
    exec(compile(body.replace('"parity-rotary-s0"', repr(str(trained_run))), "circuits.md", "exec"), scope)
    assert scope["grid"].shape[0] == 2 and len(scope["rows"]) == 4  # [layer, pos, head]; 2 layers x 2 heads
    assert scope["rows"][0].component == "L0H0" and len(scope["ablations"].rows) == 4 + 2  # 4 heads, 2 MLPs


def test_the_vocabulary_table_matches_the_commands():
    """Each option of docs/cli.md's table exists in every command its row names."""
    root = get_command(app)
    names = {n for n in root.commands if n != "grid"} | {"grid"}
    rows = [line.split("|")[1:-1] for line in (REPO / "docs" / "cli.md").read_text().splitlines()
            if line.startswith("| `--")]
    assert len(rows) > 10
    checked = 0
    for option_cell, _, where, _ in rows:
        options = re.findall(r"`(--[a-z-]+)", option_cell)
        for command in (w for w in re.findall(r"[a-z]+", re.sub(r"\(.*?\)|`.*?`", "", where)) if w in names):
            cmd = root.commands[command]
            cmd = cmd.commands["run"] if command == "grid" else cmd
            opts = {o for p in cmd.params for o in [*p.opts, *getattr(p, "secondary_opts", [])]}
            for option in options:
                assert option in opts, (option, command)
                checked += 1
    assert checked > 30


def test_the_readme_python_quickstart_runs(tmp_path, monkeypatch):
    """README's Python quickstart, with 20 training steps instead of 300 (run in a scratch directory)."""
    body = blocks(REPO / "README.md", ("python",))[0]
    assert "steps=300" in body
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(body.replace("steps=300", "steps=20"), "README.md", "exec"), scope)
    assert scope["restored"].shape == (scope["run"].model.cfg.n_layers, scope["pair"].clean.tokens.shape[1])
    assert scope["pattern"].shape[1] == scope["run"].model.cfg.n_heads
    assert scope["best"].component in {r.component for r in scope["heads"].rows}
