"""Atomic file writes and safe reads: JSON and safetensors only, never pickle.

Every write goes to a temporary file in the same directory, is flushed to disk, and
then renamed over the target, so a reader (or a process killed mid-write) sees either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from comp.errors import CompError

if TYPE_CHECKING:  # torch and safetensors load lazily: JSON helpers stay light (grid task runner)
    import torch


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write ``path`` through ``write(file)``, atomically."""

    def fill(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    _atomic_fill(path, fill)


def _atomic_fill(path: Path, fill: Callable[[str], Any]) -> None:
    """Create ``path`` atomically: ``fill(tmp)`` writes a temporary file beside it, which is
    synced and renamed over ``path`` (or removed on any error), so a reader sees the old
    file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: "str | Path", data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_text(path: "str | Path", text: str) -> None:
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def write_bytes(path: "str | Path", data: bytes) -> None:
    _atomic_write(Path(path), lambda f: f.write(data))


def read_json(path: "str | Path", what: str = "file") -> Any:
    """Read a JSON file; a missing or corrupt file is a :class:`CompError`."""
    path = Path(path)
    if not path.exists():
        raise CompError(f"{what} {path} does not exist; check the path")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CompError(f"{what} {path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}); it may be truncated, re-create it") from None


def save_tensors(path: "str | Path", tensors: dict[str, torch.Tensor], metadata: "dict[str, str] | None" = None) -> None:
    """Save tensors as safetensors, atomically (contiguous CPU copies)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_fill(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


def load_tensors(path: "str | Path", what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Load a safetensors file; missing or corrupt files are a :class:`CompError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise CompError(f"{what} {path} does not exist; train the run first or check the path")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CompError(f"{what} {path} is unreadable ({str(e).splitlines()[0]}); it may be truncated, retrain or restore it") from None


def read_metadata(path: "str | Path") -> dict[str, str]:
    """The string metadata stored in a safetensors header."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CompError(f"checkpoint {path} is unreadable ({str(e).splitlines()[0]}); it may be truncated, retrain it") from None
