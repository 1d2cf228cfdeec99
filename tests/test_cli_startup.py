"""The CLI starts without torch: help and usage errors come from light modules, every
usage error is comp's one ``error:`` line with exit code 2, every default is stated one way."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from comp import catalog
from comp.cli.main import app

runner = CliRunner()
HEAVY = ("torch", "transformer_lens", "plotly", "matplotlib", "circuitsvis")


def commands(group=None, path=()):
    """(path, click command) of every command of the CLI, groups included."""
    group = group or get_command(app)
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from commands(sub, (*path, name))


def test_importing_the_cli_imports_no_heavy_module():
    code = f"import sys, comp.cli.main; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_catalog_matches_the_registries_it_mirrors():
    from comp.circuits.ablate import ABLATIONS
    from comp.circuits.discover import ABLATIONS as CIRCUIT_ABLATIONS
    from comp.circuits.discover import LEVELS, METHODS
    from comp.circuits.hypotheses import ALL, HYPOTHESES, SUFFICIENCY_ABLATIONS, Thresholds
    from comp.circuits.patching import CORRUPTIONS
    from comp.circuits.roles import LAYER_WORDS
    from comp.config import default_of
    from comp.dynamics.measures import MEASURES
    from comp.dynamics.stages import FORM_THRESHOLD
    from comp.lengthgen import BACKENDS
    from comp.lengthgen.study import DEFAULT_PES
    from comp.model.encodings import HELP
    from comp.tasks import TASKS

    assert catalog.TASK_NAMES == tuple(TASKS)
    assert catalog.ENCODING_HELP == HELP
    assert catalog.DEFAULT_PES == DEFAULT_PES
    assert catalog.ABLATIONS == tuple(ABLATIONS)
    assert catalog.CORRUPTIONS == tuple(CORRUPTIONS)
    assert catalog.HYPOTHESES == tuple(HYPOTHESES) and catalog.ALL_HYPOTHESES == ALL
    assert catalog.MIN_SCORE == Thresholds.score
    assert catalog.LAYER_CHOICES == LAYER_WORDS and catalog.SUFFICIENCY_ABLATIONS == SUFFICIENCY_ABLATIONS
    assert catalog.LENGTHGEN_BACKENDS == tuple(BACKENDS)
    assert (catalog.CIRCUIT_LEVELS, catalog.CIRCUIT_METHODS, catalog.CIRCUIT_ABLATIONS) == (LEVELS, METHODS, CIRCUIT_ABLATIONS)
    assert catalog.DYNAMICS_MEASURES == tuple(MEASURES) and catalog.FORM_THRESHOLD == FORM_THRESHOLD
    for (section, name), value in catalog.TRAIN_DEFAULTS.items():
        assert value == default_of(section, name), (section, name)


def test_every_help_states_each_default_once_in_one_style():
    for path, command in commands():
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert res.exit_code == 0, (path, res.output)
        assert "[default:" not in res.output, path  # typer's style is off: ours is "(default: X)"
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            stated = re.findall(r"\(default", param.help or "")
            assert len(stated) <= 1, (path, param.name, param.help)
            meaningful = not param.required and param.default not in (None, "", (), [], False)
            if meaningful and not (param.is_flag and not param.secondary_opts):
                assert stated, (path, param.name, param.help)


@pytest.mark.parametrize("args, message", [
    (["heads", "--ckpt", "x", "--n", "many"], "Invalid value for '--n'"),
    (["heads", "--ckpt", "x", "--bogus"], "No such option: --bogus"),
    (["heads"], "Missing option '--ckpt'"),
    (["grid", "run"], "Missing argument"),
    (["fly"], "No such command 'fly'"),
])
def test_usage_errors_are_one_error_line_and_exit_2(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert "--help" in lines[0] and "╭" not in res.output


def test_no_arguments_shows_the_help():
    res = runner.invoke(app, [])
    assert res.exit_code == 0 and "Usage" in res.output and "train" in res.output
