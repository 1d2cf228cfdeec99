"""Every command, every option: a bad value gets one ``error:`` line, exit 2, no traceback, nothing written.

The walker introspects the typer app (every command and subcommand, every option), builds
bad values for each option from its type and name (ints: zero, negative, huge, malformed;
floats: nan, inf, negative, malformed; length/seed/list strings: malformed ranges; paths:
under a file, missing, a directory where a file is read), and runs each through the CLI on
top of a valid, cheap base command line (the hand-planted run of :mod:`planted`). Values an
option documents as valid (``--length 0`` means "the run's") are listed in :data:`VALID` and
skipped. The default suite tries one bad value per class per option; ``-m slow`` adds random
out-of-range numbers (hypothesis) for every numeric option.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planted import planted_model, save_planted_run
from typer.testing import CliRunner

from comp.cli.main import app
from comp.cli.ranges import RANGES
from comp.runs.state import model_tensors, save_snapshot

HUGE = str(10**12)
INT_BAD = {"zero": "0", "negative": "-1", "huge": HUGE, "word": "abc", "fraction": "1.5"}
FLOAT_BAD = {"nan": "nan", "inf": "inf", "negative": "-1", "word": "abc"}
# strings holding lengths, seeds or lists of them
RANGE_BAD = {"open": "1-", "inverted": "5-2", "word": "x", "empty": ""}
NAME_BAD = {"unknown": "no-such-thing", "empty": ""}
OUT_BAD = {"under-file": "file.txt/out.json"}
IN_BAD = {"missing": "missing.json", "directory": "adir", "under-file": "file.txt/in.json"}

RANGE_NAMES = {"lengths", "train_lengths", "eval_lengths", "test_lengths", "val_lengths", "seeds", "save_every"}
OUTPUT_NAMES = {"json_path", "json_out", "plot", "out", "csv_path"}

# (command, option) -> values that mean something valid there (never bad values)
VALID: dict[tuple[str, str], set[str]] = {
    ("*", "seed"): {"0", HUGE},  # any non-negative seed
    ("*", "length"): {"0"},  # 0: the run's default length
    ("*", "lengths"): {""},  # "": the run's training lengths
    ("*", "val_lengths"): {""},
    ("lengthgen", "calibrate"): {""},  # "": no calibration (the default)
    ("*", "at"): {"0"},
    ("*", "max_parallel"): {"0", HUGE},  # 0: no limit; a throttle above the runs' count is no throttle
    ("*", "member"): {""},
    ("*", "hypothesis"): {""},
    ("*", "source"): {""},
    ("*", "target"): {""},
    ("*", "input_spec"): {""},
    ("*", "task"): {""},
    ("*", "layer"): {"0"},
    ("circuit", "keep"): {""},  # "": the default target, logit=0.95
    ("circuit", "plateau"): {"0"},  # 0: no plateau moves (the default)
    ("circuit", "select"): {""},  # "": no selection batch (the default)
    ("*", "ref_n"): {"0"},  # 0: as many reference sequences as --n (the default)
    ("train", "slack"): {"0"},
    ("train", "target_acc"): {"0"},
    ("train", "tasks"): {""},
    ("probe", "weight_decay"): {"0"},
    ("grid status", "tail"): {"0"},
    ("*", "d_mlp"): {"0"},  # 0: 4 * d_model
    ("*", "steps"): {HUGE},  # training stops at its target accuracy; a probe at convergence
    ("train", "n_ctx"): {HUGE},  # rotary positions: no table of n_ctx rows
    ("train", "eval_lengths"): {""},  # "": the default evaluation lengths
    ("train", "save_every"): {""},  # "": no snapshots
    ("lengthgen", "extend"): {"0"},  # 0: no run is continued
    ("lengthgen", "restarts"): {"0"},  # 0: no run is trained again
}
# options not walked: free text passed through (--set is checked by its own tests), Slurm passthrough,
# the device (cuda options need a GPU), flags
SKIP = {"set_", "partition", "time", "gpus", "mem", "account", "qos", "constraint", "sbatch", "setup", "cpus",
        "device", "wandb_group", "name", "freeze", "init_from", "preset", "config", "resume", "grid_file", "grid",
        "a", "b", "run", "ckpt"}

# a valid, cheap command line of each command (the planted run is named "planted")
BASE: dict[str, list[str]] = {
    "train": ["train", "parity", "--steps", "2", "--n-layers", "1", "--n-heads", "1", "--d-model", "8",
              "--train-lengths", "1-2", "--eval-lengths", "1-2", "--quiet"],
    "eval": ["eval", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "lengthgen": ["lengthgen", "--pe", "nope", "--seeds", "0", "--train-lengths", "1-2", "--lengths", "1-3",
                  "--steps", "2", "--n", "2", "--quiet"],
    "probe": ["probe", "--ckpt", "planted", "--target", "x_t", "--lengths", "4", "--n", "8",
              "--steps", "2"],
    "viz": ["viz", "--ckpt", "planted", "--html", "v.html", "--length", "4"],
    "collect": ["collect", "planted"],
    "heads": ["heads", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "ablate": ["ablate", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "patch": ["patch", "--ckpt", "planted", "--length", "4", "--n", "2"],
    "circuit": ["circuit", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "circuit diff": ["circuit", "diff", "c.json", "c.json"],
    "circuit shared": ["circuit", "shared", "c.json", "c.json", "--names", "a,b"],
    "circuit score": ["circuit", "score", "c.json", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "dynamics": ["dynamics", "--ckpt", "planted", "--lengths", "4", "--n", "2"],
    "crosstask": ["crosstask", "--ckpt", "planted", "--length", "4", "--n", "2"],
    "grid run": ["grid", "run", "g.yaml", "--dry-run"],
    "grid status": ["grid", "status", "planted"],
}


def commands(group=None, prefix=()):
    """(name, click command) of every command and subcommand; a group with its own callback counts."""
    group = group or typer.main.get_command(app)
    for name, sub in group.commands.items():
        path = (*prefix, name)
        if getattr(sub, "commands", None):
            if sub.params:  # `comp circuit` runs discovery itself
                yield " ".join(path), sub
            yield from commands(sub, path)
        else:
            yield " ".join(path), sub


def annotation(param):
    kind = param.type_descriptor.annotation
    args = [a for a in getattr(kind, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 and getattr(kind, "__origin__", None) is not list else kind


def bad_values(command: str, param) -> dict[str, str]:
    """Bad values of ``param`` by class, the ones valid for this option left out."""
    kind, name = annotation(param), param.name
    if name in SKIP or getattr(param, "is_flag", False) or kind is bool:
        return {}
    if kind is int:
        values = dict(INT_BAD)
    elif kind is float:
        values = dict(FLOAT_BAD)
    elif kind is Path:
        values = dict(OUT_BAD if name in OUTPUT_NAMES else IN_BAD)
    elif name in RANGE_NAMES:
        values = dict(RANGE_BAD)
    else:
        values = dict(NAME_BAD)
    valid = VALID.get(("*", name), set()) | VALID.get((command, name), set())
    return {k: v for k, v in values.items() if v not in valid}


def cases():
    for command, cmd in commands():
        for param in cmd.params:
            for kind, value in sorted(bad_values(command, param).items()):
                yield pytest.param(command, param.opts[0], value, id=f"{command}-{param.name}-{kind}")


def test_walker_covers_every_command():
    names = {name for name, _ in commands()}
    assert names == set(BASE), names ^ set(BASE)
    assert len(list(cases())) > 250


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory holding the planted run under runs/, a file, a directory, a circuit and a grid file."""
    root = tmp_path_factory.mktemp("walk")
    save_planted_run(root / "runs" / "planted")
    model = planted_model()
    for step in (0, 1):  # weight snapshots, for comp dynamics
        save_snapshot(root / "runs" / "planted", model_tensors(model), step)
    (root / "file.txt").write_text("not a directory\n")
    (root / "adir").mkdir()
    (root / "g.yaml").write_text(json.dumps({"name": "g", "command": "train parity --steps 2", "axes": {"seed": [0]}}))
    os.environ["COMP_RUNS_DIR"] = str(root / "runs")
    try:
        result = CliRunner().invoke(app, ["circuit", "--ckpt", str(root / "runs" / "planted"), "--lengths", "4",
                                          "--n", "2", "--json", str(root / "c.json")])
    finally:
        del os.environ["COMP_RUNS_DIR"]
    assert result.exit_code == 0, result.output
    return root


def snapshot(root: Path) -> set[tuple[str, int]]:
    return {(str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*")}


def check(workspace, monkeypatch, command, option, value):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("COMP_RUNS_DIR", str(workspace / "runs"))
    monkeypatch.setenv("COMP_MEMORY_LIMIT", "2G")
    before = snapshot(workspace)
    result = CliRunner().invoke(app, [*BASE[command][: len(command.split())], *BASE[command][len(command.split()):],
                                      option, value], catch_exceptions=True)
    out = result.stdout + (result.stderr if result.stderr_bytes is not None else "")
    where = f"comp {' '.join(BASE[command])} {option} {value!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{where}: traceback {result.exception!r}"
    assert "Traceback" not in out, f"{where}: {out}"
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, f"{where}: exit {result.exit_code}, output {out!r}"
    assert snapshot(workspace) == before, f"{where}: wrote {snapshot(workspace) - before}"


@pytest.mark.parametrize(("command", "option", "value"), list(cases()))
def test_bad_value(workspace, monkeypatch, command, option, value):
    check(workspace, monkeypatch, command, option, value)


NUMERIC = [(command, param.opts[0], param.name, annotation(param)) for command, cmd in commands() if command != "train"
           for param in cmd.params if param.name in RANGES and annotation(param) in (int, float)]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_out_of_range_numbers(workspace, monkeypatch, data):
    """Random numbers below each numeric option's range (or not finite) are refused the same way."""
    command, option, name, kind = data.draw(st.sampled_from(NUMERIC))
    low, high, closed = RANGES[name]
    if kind is int:
        value = data.draw(st.integers(max_value=int(low) - 1 if closed else int(low)))
    else:
        value = data.draw(st.floats(max_value=low, exclude_max=closed) | st.sampled_from([math.nan, math.inf, -math.inf]))
    check(workspace, monkeypatch, command, option, str(value))


# base lines that do not run as they stand (their options are still walked, but the command may refuse
# the base before it reaches the bad value): a grid to collect needs finished runs, cross-task patching a
# multi-task run
NOT_RUNNABLE = {"collect", "grid status", "crosstask"}


@pytest.mark.parametrize("command", sorted(set(BASE) - NOT_RUNNABLE - {"train", "lengthgen"}))
def test_base_command_lines_are_valid(workspace, monkeypatch, tmp_path, command):
    """Each base line alone succeeds (so a walker case fails for its own value, not the base's)."""
    monkeypatch.chdir(tmp_path)  # what a valid command writes goes here, not into the workspace
    monkeypatch.setenv("COMP_RUNS_DIR", str(workspace / "runs"))
    argv = [str(workspace / a) if (workspace / a).is_file() else a for a in BASE[command]]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output


# values of the options the walker skips, and length ranges far past memory (found by hand after the walker)
BY_HAND = [
    ("heads", "--lengths", "1-99999"),
    ("ablate", "--lengths", "1-99999"),
    ("circuit", "--lengths", "1-99999"),
    ("train", "--name", "a/b"),
    ("train", "--name", ".."),
    ("train", "--set", "model.n_heads=0"),
    ("train", "--set", "model.d_head=-1"),
    ("train", "--set", "nonsense"),
    ("train", "--preset", "nope"),
    ("train", "--slack", "-1"),  # --slack takes a number or L (a str option: the int bad values are not walked)
    ("train", "--slack", "1.5"),
    ("train", "--slack", "l"),
    ("train", "--config", "missing.yaml"),
    ("eval", "--device", "foo"),
    ("lengthgen", "--device", "foo"),
    ("dynamics", "--ckpt", ""),  # no run at all (the positional form is deprecated, --ckpt the one way)
]


@pytest.mark.parametrize(("command", "option", "value"), BY_HAND)
def test_bad_value_by_hand(workspace, monkeypatch, command, option, value):
    check(workspace, monkeypatch, command, option, value)
