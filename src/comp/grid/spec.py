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
    run_name: "parity-{pe}-s{seed}"  # run names (default: axis=value joined by _, e.g. pe=rotary_seed=0)
    pack: seed                       # runs that differ only in seed train together: one task, comp train --seeds

An axis becomes ``--<axis> VALUE`` (``_`` -> ``-``; booleans ``--x``/``--no-x``; lists
joined by commas), unless the command names it as a placeholder ``{axis}``. Run names
depend only on the axis values: stable, and unique in the grid.
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
from comp.grid.bases import Base, base_for
from comp.grid.changes import check_grid_change
from comp.grid.layout import GridDir, RunLine
from comp.grid.sbatch import check_slurm_options
from comp.runs.names import runs_dir

BACKENDS = ("slurm", "local")
KEYS = ("name", "command", "axes", "out", "backend", "max_parallel", "wandb", "slurm", "run_name", "pack")
PACKS = ("seed",)  # axes whose runs can share one task (comp train --seeds)
AXIS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_.-]*)\}")
UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")  # characters a run name may not hold (paths, wandb ids)


@dataclass
class Grid:
    """A parsed grid file (or a grid built in Python, as ``comp lengthgen`` does)."""

    name: str  # directory name, Slurm job name, wandb group
    command: list[str]  # the base comp command line, e.g. ["train", "parity", "--steps", "500"]
    axes: dict[str, list]  # axis -> values, in file order
    out: Path  # runs directory; the grid lives in out/name
    backend: str = "slurm"  # slurm | local
    max_parallel: int = 0  # Slurm array throttle / local workers (0: no limit / CPU count)
    wandb: bool = False  # train runs log to wandb, group = name
    slurm: dict[str, Any] = field(default_factory=dict)  # options of comp.grid.sbatch.sbatch_script
    run_name: str = ""  # run name template with {axis} placeholders ("": axis=value joined by _)
    pack: str = ""  # "seed": runs that differ only in seed share one array task (comp train --seeds)
    runs_subdir: str = ""  # run directories live in <grid dir>/<runs_subdir>/ (comp lengthgen: "runs")

    @property
    def dir(self) -> GridDir:
        return GridDir(self.out / self.name)

    @property
    def run_root(self) -> Path:
        """The directory that holds the run directories."""
        return self.dir.root / self.runs_subdir if self.runs_subdir else self.dir.root

    @property
    def name_template(self) -> str:
        return self.run_name or "_".join(f"{axis}={{{axis}}}" for axis in self.axes)


def check_dir_name(name: str, what: str) -> str:
    """``name`` if it is a plain directory name (no ``/``, no leading ``.`` or ``_``: ``_grid`` is comp's)."""
    if not name or "/" in name or name.startswith((".", "_")) or name != name.strip():
        raise CompError(f"{what} {name!r} must be a plain directory name (no '/', no leading '.' or '_')")
    return name


def load_grid(path: "str | Path") -> Grid:
    """Read and check a grid file (every mistake is one :class:`CompError` line)."""
    from comp.config import load_config_file

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
    name = check_dir_name(str(data.get("name") or path.stem), "grid name")
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
    template = data.get("run_name") or ""
    if not isinstance(template, str):
        raise CompError(f"run_name in {path} must be a string such as 'parity-{{pe}}-s{{seed}}', got {template!r}")
    out = Path(os.path.abspath(data.get("out") or runs_dir()))
    return Grid(name, command, {str(k): v for k, v in axes.items()}, out, backend, max_parallel,
                bool(data.get("wandb", False)), check_slurm_options(slurm), template, data.get("pack") or "")


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


def fill_name(template: str, axes: dict[str, Any]) -> str:
    """The run name ``template`` with the placeholders of ``axes`` filled (others kept): characters
    unsafe in paths and wandb ids become ``-`` (``,`` -> ``+``). ``pe={pe}_seed={seed}`` -> ``pe=rotary_seed=0``."""
    def part(m: re.Match) -> str:
        key = m.group(1)
        return UNSAFE.sub("-", value_text(axes[key]).replace(",", "+")) if key in axes else m.group(0)

    return PLACEHOLDER.sub(part, template)


def check_template(grid: Grid) -> str:
    """The grid's run name template, checked: known placeholders, safe literal text, ``{seed}`` when packing."""
    template = grid.name_template
    unknown = sorted(set(PLACEHOLDER.findall(template)) - set(grid.axes))
    if unknown:
        raise CompError(f"run_name {template!r} names unknown axes {unknown}; axes: {', '.join(grid.axes)}")
    literal = PLACEHOLDER.sub("", template)
    if UNSAFE.search(literal) or template.startswith((".", "_")):
        raise CompError(f"run_name {template!r} may hold letters, digits and . _ + = - around {{axis}} placeholders, "
                        "and may not start with . or _")
    return template


def check_pack(grid: Grid, base: Base, used: set[str], template: str) -> None:
    """Packing seeds needs a train grid with a seed axis of whole numbers that names runs by seed."""
    if grid.pack not in PACKS:
        raise CompError(f"pack {grid.pack!r} is not supported; pack: seed (runs that differ only in seed share a task)")
    if not base.packs_seeds:
        raise CompError(f"pack: seed trains seeds together with comp train --seeds; the command is comp {grid.command[0]}")
    seeds = grid.axes.get("seed")
    if seeds is None or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise CompError("pack: seed needs a seed axis of whole numbers >= 0, e.g. seed: [0, 1, 2]")
    if "seed" in used or "--seed" in grid.command:
        raise CompError("pack: seed passes the seeds itself (--seeds); remove --seed and {seed} from command")
    if "{seed}" not in template:
        raise CompError(f"run_name {template!r} must hold {{seed}} when seeds are packed: one run directory per seed")


def expand(grid: Grid) -> list[RunLine]:
    """The manifest: one :class:`RunLine` per point of the product of the axes. With
    ``pack: seed`` the lines that differ only in seed share an array task and a
    ``pack``: the command that trains them together (``--seeds`` left to the task)."""
    check_dir_name(grid.name, "grid name")
    base = base_for(grid.command)
    base.check(grid.command)
    used = {m for tok in grid.command for m in PLACEHOLDER.findall(tok)}
    template = check_template(grid)
    if grid.pack:
        check_pack(grid, base, used, template)
    root = grid.run_root
    lines: list[RunLine] = []
    tasks: dict[tuple, int] = {}  # packed: the other axes' values -> task id
    for index, values in enumerate(itertools.product(*grid.axes.values())):
        axes = dict(zip(grid.axes, values))
        run = check_dir_name(fill_name(template, axes), "run name")
        run_dir = root / run
        fields = {"run": run, "run_dir": str(run_dir), "grid": grid.name, "grid_dir": str(grid.dir.root),
                  **{k: value_text(v) for k, v in axes.items()}}
        missing = sorted(used - set(fields))
        if missing:
            raise CompError(f"unknown placeholder(s) {missing} in command; known: {', '.join(sorted(fields))}")
        command = [PLACEHOLDER.sub(lambda m, f=fields: f[m.group(1)], tok) for tok in grid.command]
        flags = {k: axis_args(k, v) for k, v in axes.items() if k not in used}
        base.check([a for args in flags.values() for a in args])
        argv = [*command, *(a for args in flags.values() for a in args), *base.grid_args(run, run_dir, grid.name, grid.wandb)]
        task, pack = index, None
        if grid.pack:
            rest = {k: v for k, v in axes.items() if k != "seed"}
            task = tasks.setdefault(tuple(value_text(v) for v in rest.values()), len(tasks))
            group = fill_name(template, rest)  # still holds {seed}: comp train --seeds fills it per seed
            pack = {"argv": [*command, *(a for k, args in flags.items() if k != "seed" for a in args),
                             *base.grid_args(group, root / group, grid.name, grid.wandb)],
                    "run_dir": str(root / group)}
        lines.append(RunLine(index, run, str(run_dir), axes, argv, task, pack))
    names = [x.run for x in lines]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CompError(f"two runs would share the name {dup!r}; make the axis values (or run_name) distinct")
    return lines


def open_grid(spec: "str | Path") -> tuple[GridDir, list[RunLine]]:
    """A grid given by its file (expanded now), its directory, or its name under the runs directory."""
    path = Path(spec)
    if path.is_file():
        grid = load_grid(path)
        lines = expand(grid)
        check_grid_change(grid.dir, lines)  # a file changed since submission would mix two grids
        return grid.dir, lines
    for candidate in (path, runs_dir() / str(spec)):
        if GridDir(candidate).exists():
            return GridDir(candidate), GridDir(candidate).read_manifest()
    raise CompError(f"no grid {str(spec)!r}: give a grid file, a grid directory (with _grid/), or a grid name under runs/")
