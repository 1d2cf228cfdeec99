"""The Slurm job script of a grid: one pure function, :func:`sbatch_script`.

As in submitit, the keyword defaults of :func:`sbatch_script` are the whitelist of
Slurm options a grid file may set (:data:`SLURM_OPTIONS`); anything else is an error
that lists them. The text is deterministic: sorted ``#SBATCH`` lines, every value passed
through ``shlex.quote`` (sbatch strips shell quotes in ``#SBATCH`` lines), and three
sections ``# Parameters``, ``# setup``, ``# command``. Task ``i`` of the array runs
``command + [i]``; the command is ``exec``'d so that the batch shell *becomes* the task
runner and receives ``--signal=B:USR1@120`` itself.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Sequence
from typing import Any

from comp.errors import CompError

# options comp sets itself: a grid file's `extra` lines may not repeat them
RESERVED = ("array", "chdir", "job-name", "open-mode", "output")
FLAG_NAMES = {"cpus": "cpus-per-task"}  # option name -> sbatch flag, where they differ


def sbatch_script(
    command: Sequence[str],
    *,
    job_name: str,
    array: str,
    output: str,
    chdir: str,
    partition: "str | None" = None,
    time: "str | int | None" = None,
    gpus: "str | int | None" = None,
    cpus: "int | None" = None,
    mem: "str | None" = None,
    account: "str | None" = None,
    qos: "str | None" = None,
    constraint: "str | None" = None,
    extra: Sequence[str] = (),
    setup: Sequence[str] = (),
    signal: str = "B:USR1@120",
    requeue: bool = True,
) -> str:
    """The text of an array job script whose task ``i`` runs ``command i``.

    ``extra`` holds more ``#SBATCH`` options as ``--key=value``; ``setup`` holds shell
    lines run before the command (``module load ...``, ``source venv/bin/activate``),
    verbatim: they are the user's shell code. Everything else is quoted.
    """
    options: dict[str, Any] = {"array": array, "chdir": chdir, "job-name": job_name, "open-mode": "append",
                               "output": output, "signal": signal}
    named = {"partition": partition, "time": time, "gpus": gpus, "cpus": cpus, "mem": mem, "account": account,
             "qos": qos, "constraint": constraint}
    options.update({FLAG_NAMES.get(k, k): v for k, v in named.items() if v is not None})
    lines = [f"--{flag}={value}" for flag, value in options.items()]
    lines += ["--requeue"] if requeue else []
    lines += [_check_extra(e) for e in extra]
    return "\n".join([
        "#!/bin/bash",
        "",
        "# Parameters",
        *(f"#SBATCH {shlex.quote(line)}" for line in sorted(lines)),
        "",
        "# setup",
        'export WANDB_MODE="${WANDB_MODE:-offline}"',
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
        *setup,
        "",
        "# command (exec: the batch shell becomes the task runner, so B:USR1 reaches it)",
        f'exec {shlex.join(command)} "$SLURM_ARRAY_TASK_ID"',
        "",
    ])


def _check_extra(line: str) -> str:
    flag = line.split("=", 1)[0].lstrip("-")
    if not line.startswith("-") or not flag:
        raise CompError(f"extra sbatch option {line!r} should look like --key=value, e.g. --exclusive or --gres=gpu:2")
    named = {FLAG_NAMES.get(k, k): k for k in SLURM_OPTIONS}
    if flag in named:
        raise CompError(f"extra sbatch option {line!r}: set {named[flag]!r} in the grid's slurm section instead")
    if flag in RESERVED:
        raise CompError(f"extra sbatch option {line!r}: comp sets --{flag} itself")
    return line


SLURM_OPTIONS: tuple[str, ...] = tuple(
    name for name, p in inspect.signature(sbatch_script).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
)


def check_slurm_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if every key is a known option, else an error listing the valid ones."""
    unknown = sorted(set(options) - set(SLURM_OPTIONS))
    if unknown:
        raise CompError(f"unknown slurm option(s) {', '.join(unknown)}; valid options: {', '.join(SLURM_OPTIONS)}"
                        " (anything else goes in extra: [--key=value])")
    for key in ("extra", "setup"):
        value = options.get(key, ())
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise CompError(f"slurm option {key!r} must be a list of strings, got {value!r}")
    return options


def array_spec(indices: Sequence[int], max_parallel: int = 0) -> str:
    """``--array`` value for array tasks ``indices``: ``0-9%4``, or ``0-2,5,7-8``."""
    if not indices:
        raise CompError("no runs to submit")
    ranges: list[list[int]] = []
    for i in sorted(set(indices)):
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    spec = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
    return f"{spec}%{max_parallel}" if max_parallel > 0 else spec
