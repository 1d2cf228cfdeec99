"""One vocabulary: each option that several commands share has one meaning and one default."""

from __future__ import annotations

import re

from test_cli_startup import commands
from typer.testing import CliRunner

from comp.catalog import EVAL_SEED, N_SEQUENCES
from comp.cli.main import app

runner = CliRunner()


def options_named(flag: str):
    """(command path, click option) of every command option that answers to ``flag``."""
    for path, command in commands():
        for param in command.params:
            if flag in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
                yield " ".join(path), param


def test_n_has_one_default_in_every_command():
    found = dict(options_named("--n"))
    assert {"eval", "heads", "ablate", "patch", "circuit", "lengthgen", "dynamics", "crosstask", "probe"} <= set(found)
    assert {path: p.default for path, p in found.items()} == dict.fromkeys(found, N_SEQUENCES)


def test_data_seed_has_one_default_in_every_command():
    found = dict(options_named("--data-seed"))
    assert {"eval", "heads", "ablate", "patch", "circuit", "dynamics", "crosstask", "probe", "viz"} <= set(found)
    assert {path: p.default for path, p in found.items()} == dict.fromkeys(found, EVAL_SEED)


def test_every_analysis_names_its_run_with_ckpt():
    found = {path for path, _ in options_named("--ckpt")}
    assert {"eval", "heads", "ablate", "patch", "circuit", "dynamics", "crosstask", "probe", "viz"} <= found


def test_devices_train_where_training_does_and_analyse_on_the_cpu():
    defaults = {path: p.default for path, p in options_named("--device")}
    assert defaults.pop("lengthgen") == "auto" and defaults.pop("train") is None  # None: the config's, auto
    assert set(defaults.values()) == {"cpu"}, defaults


def test_help_shows_no_placeholder_default():
    """A default that stands for something else (0: the longest trained; "": the run's) is said in words,
    never printed as its placeholder value."""
    checked = 0
    for path, command in commands():
        for param in command.params:
            if param.param_type_name == "option" and param.default in (0, "") and not param.is_flag:
                assert not re.search(r"\(default: (0|)\)", param.help or ""), (path, param.name, param.help)
                checked += 1
    assert checked > 10


def test_backend_local_means_worker_processes_in_grid_and_lengthgen():
    grid = runner.invoke(app, ["grid", "run", "--help"], env={"COLUMNS": "400"}).output
    study = runner.invoke(app, ["lengthgen", "--help"], env={"COLUMNS": "400"}).output
    assert "local" in grid and "local (worker processes, as comp grid --backend local)" in study
    assert "inline (one after another in this process)" in study
