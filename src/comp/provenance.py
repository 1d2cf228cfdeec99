"""Provenance: where a result file came from, recorded one way in every one of them.

:func:`provenance` gives the block every ``--json`` result and grid collection carries
under the key ``"provenance"``: the comp version, the git commit of the checkout, the
versions of the packages that decide the numbers (read from the installed distributions,
so TransformerLens is named even though it has no ``__version__``), a SHA-256 of the run's
settings (its ``config.json`` without the bookkeeping ``meta``) and the call that made it:
the ``comp ...`` command line, or for a Python caller ``python: module.function(args)`` and
the script's ``sys.argv``.

The library records it too, not only ``--json``: each analysis entry point (``evaluate_run``,
``score_heads``, ``ablate_run``, ``probe_run``, ``dynamics_run``, ``cross_task_run``) is
wrapped by :func:`recorded`, so its result carries the block (``result["provenance"]`` for a
dict, ``result.provenance`` for a result object; :func:`result_dict` gives either as JSON-ready
data), and ``run_study`` writes it into ``results.json``.
No torch: ``comp collect`` and ``comp grid status`` write it without importing it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformer-lens", "numpy", "safetensors", "typer")  # distributions, as pip names them
KEY = "provenance"  # where a result file keeps it
COMMAND_LINE: list[str] = []  # the arguments after `comp` while a comp command runs (set by the CLI's root command)


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` ("unknown" for one that is not installed)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def git_commit() -> str:
    """The commit of the comp checkout, with ``-dirty`` when it has local changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def config_hash(config: "dict | None") -> "str | None":
    """SHA-256 of ``config`` as canonical JSON, its ``meta`` (versions, commit) left out."""
    if config is None:
        return None
    settings = {k: v for k, v in config.items() if k != "meta"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def provenance(command: "list[str] | None" = None, config: "dict | None" = None, call: "str | None" = None) -> dict:
    """The ``"provenance"`` block of a result file: ``command`` is the comp command line
    (arguments after ``comp``), ``config`` the settings the result was computed from; without
    a command line, ``call`` (``python: module.function(args)``) and ``sys.argv`` say who asked."""
    import comp

    block = {
        "comp": comp.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "config_sha256": config_hash(config),
        "command": shlex.join(["comp", *command]) if command else call,
    }
    if not command:
        block["argv"] = list(sys.argv)
    return block


def run_config(run: "str | Path") -> "dict | None":
    """The ``config.json`` of a run given by name or directory (None if there is none)."""
    from comp.errors import CompError
    from comp.io import read_json
    from comp.runs.files import CONFIG_FILE
    from comp.runs.names import resolve_run

    try:
        return read_json(resolve_run(str(run)) / CONFIG_FILE)
    except (CompError, OSError, ValueError):
        return None


def python_call(fn: Callable, args: tuple, kwargs: dict) -> str:
    """``python: module.function(first, key=value)`` with the arguments as given (defaults left out)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return f"python: {fn.__module__}.{fn.__qualname__}(...)"
    shown = []
    for name, value in bound.arguments.items():
        text = repr(str(value) if isinstance(value, Path) else value)
        shown.append(f"{name}={text}" if shown else text)  # the first (the run, the study) by position
    return f"python: {fn.__module__}.{fn.__qualname__}({', '.join(shown)})"


def attach(result: Any, block: dict) -> Any:
    """Put ``block`` on ``result``: a dict's ``"provenance"`` key, an object's ``provenance`` attribute
    (each element of a list)."""
    if isinstance(result, dict):
        result[KEY] = block
    elif isinstance(result, list):
        for item in result:
            attach(item, block)
    else:
        setattr(result, KEY, block)
    return result


def recorded(fn: Callable) -> Callable:
    """Wrap an analysis of one run (its first argument: a run name or directory) so that its
    result carries :func:`provenance`: the comp command line when called by ``comp``, else the
    Python call; the settings hashed are the run's ``config.json``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        run = args[0] if args else next(iter(kwargs.values()), None)
        return attach(result, provenance(COMMAND_LINE, run_config(run) if run is not None else None,
                                         python_call(fn, args, kwargs)))

    return wrapper


def result_dict(result: Any) -> dict:
    """A result as JSON-ready data: its ``to_dict()``, :func:`dataclasses.asdict` or the dict itself,
    with its provenance block when it carries one."""
    if isinstance(result, dict):
        return dict(result)
    data = dict(result.to_dict() if hasattr(result, "to_dict") else asdict(result) if is_dataclass(result) else result)
    if getattr(result, KEY, None) is not None:
        data[KEY] = getattr(result, KEY)
    return data
