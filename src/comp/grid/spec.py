"""Grid files: a base command and axes, expanded into a manifest of runs.

A grid file (YAML or JSON)::

    name: parity-pe                  # grid name (default: the file's stem): directory, job and wandb group
    command: train parity --steps 1500 --set threads=1   # any comp command line (string or list)
    axes:                            # the product of the axes is the grid; the last axis varies fastest
      pe: [rotary, alibi, nope]      #   -> --pe rotary
      seed: [0, 1, 2]                #   -> --seed 0
      train.weight_decay: [0, 0.1]   #   dotted -> --set train.weight_decay=0.1
    out: runs                        # runs go to <out>/<name>/<run> (default: $COMP_RUNS_DIR or runs)
    backend: slurm                   # slurm | local
    max_parallel: 4                  # array throttle (%4) / local worker processes (0: no limit / all CPUs)
    wandb: true                      # train runs log to wandb (offline by default), grouped by grid name
    slurm: {partition: gpu, time: "01:00:00", gpus: 1, cpus: 4, mem: 8G, extra: [--exclusive], setup: [module load cuda]}

An axis becomes ``--<axis> VALUE`` (``_`` -> ``-``; booleans ``--x``/``--no-x``; lists
joined by commas), unless the command names it as a placeholder ``{axis}``. Run names
join ``axis=value`` with ``_`` (``pe=rotary_seed=0``): stable, and unique in the grid.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comp.errors import CompError
from comp.grid.bases import base_for
from comp.grid.layout import GridDir, RunLine
from comp.grid.sbatch import check_slurm_options

BACKENDS = ("slurm", "local")
KEYS = ("name", "command", "axes", "out", "backend", "max_parallel", "wandb", "slurm")
AXIS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_.-]*)\}")


@dataclass
class Grid:
    """A parsed grid file."""

    name: str  # directory name, Slurm job name, wandb group
    command: list[str]  # the base comp command line, e.g. ["train", "parity", "--steps", "500"]
    axes: dict[str, list]  # axis -> values, in file order
    out: Path  # runs directory; the grid lives in out/name
    backend: str = "slurm"  # slurm | local
    max_parallel: int = 0  # Slurm array throttle / local workers (0: no limit / CPU count)
    wandb: bool = False  # train runs log to wandb, group = name
    slurm: dict[str, Any] = field(default_factory=dict)  # options of comp.grid.sbatch.sbatch_script

    @property
    def dir(self) -> GridDir:
        return GridDir(self.out / self.name)


def load_grid(path: "str | Path") -> Grid:
    """Read and check a grid file (every mistake is one :class:`CompError` line)."""
    from comp.config import load_config_file
    from comp.runs import runs_dir

    path = Path(path)
    data = load_config_file(path)
    if not isinstance(data, dict):
        raise CompError(f"grid file {path} must hold a mapping with command and axes")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise CompError(f"unknown key(s) {', '.join(unknown)} in grid file {path}; valid keys: {', '.join(KEYS)}")
    for key in ("command", "axes"):
        if not data.get(key):
            raise CompError(f"grid file {path} needs {key!r}; e.g. command: train parity, axes: {{seed: [0, 1]}}")
    command = data["command"]
    command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    name = str(data.get("name") or path.stem)
    if "/" in name or name.startswith((".", "_")) or name != name.strip():
        raise CompError(f"grid name {name!r} must be a plain directory name (no '/', no leading '.' or '_')")
    axes = data["axes"]
    if not isinstance(axes, dict):
        raise CompError(f"axes in {path} must map axis names to lists of values, e.g. seed: [0, 1, 2]")
    for axis, values in axes.items():
        if not AXIS_NAME.match(str(axis)):
            raise CompError(f"axis name {axis!r} should look like seed, n_layers or train.weight_decay")
        if not isinstance(values, list) or not values:
            raise CompError(f"axis {axis!r} needs a non-empty list of values, e.g. {axis}: [0, 1]")
    backend = data.get("backend", "slurm")
    if backend not in BACKENDS:
        raise CompError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    max_parallel = data.get("max_parallel", 0)
    if not isinstance(max_parallel, int) or max_parallel < 0:
        raise CompError(f"max_parallel must be a whole number >= 0, got {max_parallel!r}")
    slurm = data.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise CompError(f"slurm in {path} must be a mapping of options, e.g. {{partition: gpu, time: '01:00:00'}}")
    out = Path(os.path.abspath(data.get("out") or runs_dir()))
    return Grid(name, command, {str(k): v for k, v in axes.items()}, out, backend, max_parallel,
                bool(data.get("wandb", False)), check_slurm_options(slurm))


def value_text(value: Any) -> str:
    """An axis value as it appears on a command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value_text(v) for v in value)
    return str(value)


def axis_args(axis: str, value: Any) -> list[str]:
    """``--axis value``; dotted axes are ``--set axis=value``; booleans ``--axis``/``--no-axis``."""
    if "." in axis:
        return ["--set", f"{axis}={value_text(value)}"]
    flag = axis.replace("_", "-")
    if isinstance(value, bool):
        return [f"--{flag}" if value else f"--no-{flag}"]
    return [f"--{flag}", value_text(value)]


def run_name(axes: dict[str, Any]) -> str:
    """``pe=rotary_seed=0``: characters unsafe in paths and wandb ids become ``-`` (``,`` -> ``+``)."""
    parts = [f"{k}={re.sub(r'[^A-Za-z0-9._+=-]', '-', value_text(v).replace(',', '+'))}" for k, v in axes.items()]
    return "_".join(parts)


def expand(grid: Grid) -> list[RunLine]:
    """The manifest: one :class:`RunLine` per point of the product of the axes."""
    base = base_for(grid.command)
    base.check(grid.command)
    used = {m for tok in grid.command for m in PLACEHOLDER.findall(tok)}
    lines = []
    for index, values in enumerate(itertools.product(*grid.axes.values())):
        axes = dict(zip(grid.axes, values))
        run = run_name(axes)
        run_dir = grid.out / grid.name / run
        fields = {"run": run, "run_dir": str(run_dir), "grid": grid.name, "grid_dir": str(run_dir.parent),
                  **{k: value_text(v) for k, v in axes.items()}}
        missing = sorted(used - set(fields))
        if missing:
            raise CompError(f"unknown placeholder(s) {missing} in command; known: {', '.join(sorted(fields))}")
        argv = [PLACEHOLDER.sub(lambda m, f=fields: f[m.group(1)], tok) for tok in grid.command]
        argv += [a for k, v in axes.items() if k not in used for a in axis_args(k, v)]
        argv += base.grid_args(run, run_dir, grid.name, grid.wandb)
        lines.append(RunLine(index, run, str(run_dir), axes, argv))
    names = [x.run for x in lines]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CompError(f"two runs would share the name {dup!r}; make the axis values distinct")
    return lines


def open_grid(spec: "str | Path") -> tuple[GridDir, list[RunLine]]:
    """A grid given by its file (expanded now), its directory, or its name under the runs directory."""
    from comp.runs import runs_dir

    path = Path(spec)
    if path.is_file():
        grid = load_grid(path)
        return grid.dir, expand(grid)
    for candidate in (path, runs_dir() / str(spec)):
        if GridDir(candidate).exists():
            return GridDir(candidate), GridDir(candidate).read_manifest()
    raise CompError(f"no grid {str(spec)!r}: give a grid file, a grid directory (with _grid/), or a grid name under runs/")
