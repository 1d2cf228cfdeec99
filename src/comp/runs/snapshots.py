"""Which steps of a run keep a snapshot of the weights (``--save-every``). No torch.

``--save-every log`` keeps step 0, every power of two (1, 2, 4, 8, ...), every
evaluation step (multiples of ``eval_every``) and the last step; ``--save-every
0,50,100,200`` keeps exactly those steps (and the last one). A snapshot is the weights
after that many optimizer steps, in ``snapshots/step_000100.safetensors``
(:func:`comp.runs.files.snapshot_path`), written by :func:`comp.runs.state.save_snapshot`.

The schedule is a function of the config only, so a resumed run keeps the same steps; a
snapshot rewritten after a resume has the same name (and, resume being exact, the same
weights): there are never two snapshots of one step.
"""

from __future__ import annotations

from comp.errors import CompError

LOG = "log"


def parse_save_every(spec: str) -> "str | list[int]":
    """``"log"`` or the sorted distinct steps of ``"0,50,100"``; anything else is a :class:`CompError`."""
    spec = spec.strip()
    if spec == LOG:
        return LOG
    try:
        steps = sorted({int(v) for v in spec.split(",") if v.strip()})
    except ValueError:
        raise CompError(f"bad --save-every {spec!r}; write log or a list of steps like 0,50,100,200") from None
    if not steps or steps[0] < 0:
        raise CompError(f"--save-every {spec!r} needs non-negative steps, e.g. 0,50,100, or log")
    return steps


def snapshot_schedule(spec: str, steps: int, eval_every: int = 0) -> set[int]:
    """The steps (0..``steps``) whose weights a run with ``--save-every spec`` keeps."""
    if not spec:
        return set()
    parsed = parse_save_every(spec)
    if parsed == LOG:
        wanted = {0} | {1 << k for k in range(steps.bit_length() + 1)}
        if eval_every:
            wanted |= set(range(eval_every, steps + 1, eval_every))
    else:
        wanted = set(parsed)
    return {s for s in wanted if s <= steps} | {steps}
