"""Shared CLI plumbing: user errors -> one line and exit 2, JSON output, output paths."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import typer

from comp.errors import CompError
from comp.io import write_json


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


def write_outputs(data: Any, json_path: "Path | None") -> None:
    """Write ``--json`` output (atomically) if asked; a result dataclass as :func:`dataclasses.asdict` gives it."""
    if json_path is not None:
        write_json(json_path, asdict(data) if is_dataclass(data) else data)
        typer.echo(f"wrote {json_path}", err=True)


def check_output_path(path: "Path | None", suffixes: tuple[str, ...]) -> None:
    """Fail early, before any work, if an output path cannot be written."""
    if path is None:
        return
    if suffixes and Path(path).suffix.lower() not in suffixes:
        raise CompError(f"output {path} should end in {' or '.join(suffixes)}")
    parent = Path(path).parent
    if parent.exists() and not parent.is_dir():
        raise CompError(f"cannot write {path}: {parent} is not a directory")


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
