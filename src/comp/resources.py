"""Memory guard: estimate what a request needs before heavy work, refuse what cannot fit,
and size the chunks long work is processed in.

The memory of a forward pass on a small transformer is dominated by attention: every
layer builds scores and a pattern ``[rows, heads, pos, pos]`` (float32), a few copies
at once (scores, the masked scores, the softmax; a T5 or ALiBi bias one more). The
residual stream, MLP and logits add ``[rows, pos, d_model / d_mlp / d_vocab]``.
Analyses that cache activations (``run_with_cache`` of every layer's pattern) keep
one more ``[rows, heads, pos, pos]`` per cached layer.

:func:`chunk_size` turns that into the number of rows that fit one pass; long work
(evaluation, head scores, ablation, patching) runs in chunks of that many rows, so a
legitimate large request (256 sequences at length 1024) runs instead of running out of
memory. When not even one row fits, :func:`check_fits` refuses up front with the
estimate and the option that lowers it (a :class:`~comp.errors.CompError`), instead of
letting the kernel kill the process (and other jobs on a shared node) later.

Available memory is ``/proc/meminfo``'s ``MemAvailable`` (bounded by a cgroup limit, if
any) on the CPU and ``torch.cuda.mem_get_info`` on a GPU; ``$COMP_MEMORY_LIMIT``
(bytes, or with a K/M/G suffix) overrides it, e.g. to share a node politely. A request
may use :data:`BUDGET_FRACTION` of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from comp.errors import CompError

BUDGET_FRACTION = 0.6  # of the available memory, for one pass (the rest: the model, Python, the OS)
ATTN_COPIES = 4  # [heads, pos, pos] float32 tensors alive at once in one attention layer
FLOAT = 4  # bytes per float32
ENV = "COMP_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"8G"``, ``"1048576"`` -> bytes."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    try:
        value = float(s[: len(s) - len(unit)])
    except ValueError:
        raise CompError(f"${ENV}={text!r} is not a size; write bytes or a number with K, M or G, e.g. 8G") from None
    if value <= 0:
        raise CompError(f"${ENV}={text!r} must be positive, e.g. 8G")
    return int(value * _UNITS[unit])


def _cgroup_free() -> "int | None":
    """Memory left under this process's cgroup (v2) limit, if it has one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def _meminfo_available() -> "int | None":
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes(device: "str | object" = "cpu") -> int:
    """Memory this process can still use on ``device`` (see the module docstring)."""
    if os.environ.get(ENV):
        return parse_bytes(os.environ[ENV])
    if str(device).startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    found = [b for b in (_meminfo_available(), _cgroup_free()) if b is not None]
    return min(found) if found else 8 * 2**30  # no way to tell: assume a small machine


def human(n: float) -> str:
    """Bytes as ``1.2 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def row_bytes(cfg, width: int, cached_patterns: int = 0) -> int:
    """Peak bytes of one sequence of ``width`` tokens through a forward pass of a model with
    TransformerLens config ``cfg`` (``n_heads``, ``d_model``, ``d_mlp``, ``d_vocab``),
    keeping ``cached_patterns`` layers' attention patterns."""
    attn = cfg.n_heads * width * width * FLOAT  # one [heads, pos, pos] float32 tensor
    d_mlp = cfg.d_mlp or 0
    stream = width * (8 * cfg.d_model + 2 * d_mlp + 2 * cfg.d_vocab) * FLOAT
    return ATTN_COPIES * attn + cached_patterns * attn + stream


def check_fits(need: int, device: "str | object", what: str, lower: str) -> None:
    """Refuse (a :class:`CompError` naming the estimate and ``lower``, the option that
    lowers it) when ``need`` bytes exceed this request's share of the memory."""
    budget = int(available_bytes(device) * BUDGET_FRACTION)
    if need > budget:
        raise CompError(
            f"{what} needs about {human(need)} of memory, more than the {human(budget)} this machine can give it "
            f"({int(BUDGET_FRACTION * 100)}% of {human(available_bytes(device))} available); {lower}"
        )


def chunk_size(
    cfg, width: int, rows: int, device: "str | object" = "cpu", *, cached_patterns: int = 0, copies: int = 1,
    what: str = "this request", lower: str = "use shorter lengths",
) -> int:
    """How many of ``rows`` sequences of ``width`` tokens fit one forward pass on ``device``
    (at least 1, at most ``rows``). ``copies``: rows that must run together (a batch of
    patches), so the result is a multiple of it. Refuses (:func:`check_fits`) when not even
    ``copies`` rows fit, with ``what`` and ``lower`` in the message.

    LEN's chunked generator and every analysis call this with the model's ``cfg``::

        per_pass = chunk_size(model.cfg, width, n, device, what=f"length {L}", lower="lower --n")
    """
    one = row_bytes(cfg, width, cached_patterns)
    check_fits(one * copies, device, f"{what} ({copies} x {width} tokens per pass)" if copies > 1
               else f"{what} (one sequence of {width} tokens)", lower)
    budget = int(available_bytes(device) * BUDGET_FRACTION)
    fit = max(copies, budget // one // copies * copies)
    return max(1, min(rows, fit))


def check_batch(cfg, rows: int, width: int, device: "str | object", what: str, lower: str) -> None:
    """Refuse a forward pass of ``rows`` sequences of ``width`` tokens that must run as one batch."""
    chunk_size(cfg, width, rows, device, copies=rows, what=what, lower=lower)


def check_rows(rows: int, width: int, device: "str | object", what: str, lower: str) -> None:
    """Refuse sets of ``rows`` x ``width`` tokens too large to hold (a few int64 tensors of that shape)."""
    check_fits(rows * width * 8 * 6, device, f"{what} ({rows} sequences of {width} tokens)", lower)
