"""Provenance: where a result file came from, recorded one way in every one of them.

:func:`provenance` gives the block every ``--json`` result and grid collection carries
under the key ``"provenance"``: the comp version, the git commit of the checkout, the
versions of the packages that decide the numbers (read from the installed distributions,
so TransformerLens is named even though it has no ``__version__``), a SHA-256 of the run's
settings (its ``config.json`` without the bookkeeping ``meta``) and the command line.
No torch: ``comp collect`` and ``comp grid status`` write it without importing it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformer-lens", "numpy", "safetensors", "typer")  # distributions, as pip names them
KEY = "provenance"  # where a result file keeps it


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


def provenance(command: "list[str] | None" = None, config: "dict | None" = None) -> dict:
    """The ``"provenance"`` block of a result file: ``command`` is the comp command line
    (arguments after ``comp``), ``config`` the settings the result was computed from."""
    import comp

    return {
        "comp": comp.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "config_sha256": config_hash(config),
        "command": shlex.join(["comp", *command]) if command is not None else None,
    }
