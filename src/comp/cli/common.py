"""Shared CLI plumbing: user errors -> one line and exit 2, JSON output, output paths."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import typer.core

from comp.errors import CompError
from comp.io import write_json
from comp.provenance import COMMAND_LINE, KEY, provenance, result_dict, run_config

# the click typer runs on: typer >= 0.29 vendors its own (typer._click), whose exceptions are not click's
click = getattr(typer.core, "_click", None) or __import__("click")


def user_errors(fn: Callable) -> Callable:
    """Turn a :class:`CompError` into one ``error: ...`` line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CompError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def write_outputs(data: Any, json_path: "Path | None", run: "str | None" = None, config: "dict | None" = None) -> None:
    """Write ``--json`` output (atomically) if asked; a result dataclass as :func:`dataclasses.asdict` gives it,
    with its :func:`comp.provenance.provenance` block: the settings hashed are ``config``, or the
    ``config.json`` of ``run`` (a run name or directory)."""
    if json_path is not None:
        data = result_dict(data)
        if run is not None and config is None:
            config = run_config(run)
        data[KEY] = provenance(COMMAND_LINE, config)
        write_json(json_path, data)
        typer.echo(f"wrote {json_path}", err=True)


def check_output_path(path: "Path | None", suffixes: tuple[str, ...]) -> None:
    """Fail early, before any work, if an output path cannot be written."""
    if path is None:
        return
    if suffixes and Path(path).suffix.lower() not in suffixes:
        raise CompError(f"output {path} should end in {' or '.join(suffixes)}")
    check_output_dir(Path(path).parent, path)


def check_output_dir(directory: "Path | None", path: "Path | None" = None) -> None:
    """Fail early if ``directory`` (to be created if missing) sits under a file."""
    if directory is None:
        return
    for above in (Path(directory), *Path(directory).parents):
        if above.exists():
            if not above.is_dir():
                raise CompError(f"cannot write {path or directory}: {above} is a file, not a directory; "
                                "give a path in a directory")
            return


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
