"""Options shared by several commands, each defined once: its name, help and default.

Analyses (``eval``, ``heads``, ``ablate``, ``patch``, ``probe``, ``viz``) take ``--ckpt``,
``--device`` and ``--json`` from here; the evaluation-set ``--seed`` defaults to
:data:`comp.config.EVAL_SEED` everywhere it means the evaluation sets. ``--n`` has one
help text but, today, a default per command (:data:`N_DEFAULTS`, one table to change).
``comp grid`` and ``comp lengthgen`` get the Slurm options by :func:`slurm_options`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from comp.config import EVAL_SEED

CKPT = typer.Option(..., help="Run name under runs/ or a run directory.")
DEVICE = typer.Option("cpu", help="cpu, cuda or cuda:N.")
JSON = typer.Option(None, "--json", help="Write the results as JSON here.")
EVAL_SEED_OPTION = typer.Option(EVAL_SEED, help="Seed of the evaluation sets.")
ANALYSIS_SEED = typer.Option(EVAL_SEED, help="Seed of the evaluation sets (the reference set uses seed + 1).")
ANALYSIS_LENGTHS = typer.Option("", help="Lengths to analyse, e.g. 1-16 (default: the run's training lengths).")
SETS = typer.Option([], "--set", help="Override any setting: --set train.weight_decay=0.1 (repeatable).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars (batch jobs).")

# sequences per length (--n) of each command that takes it
N_DEFAULTS = {"eval": 512, "heads": 128, "ablate": 128, "patch": 64, "circuit": 32, "lengthgen": 256}


def sequences(command: str, help: str = "Sequences per length.") -> Any:
    """The ``--n`` option of ``command``."""
    return typer.Option(N_DEFAULTS[command], help=help)


# ---- Slurm: `comp grid` and `comp lengthgen --backend slurm` -------------------------------------

MaxParallel = Annotated[int | None, typer.Option(
    help="Tasks at once: the array throttle %N / local workers (default: the grid's; 0: no limit / all CPUs).")]


# option name -> (the key comp.grid.launch.launch takes it under, its type, its typer option)
SLURM_OPTIONS: dict[str, tuple[str, Any, Any]] = {
    name: (key, kind, typer.Option(*decls, help=help, rich_help_panel="Slurm"))
    for name, key, kind, help, decls in [
        ("partition", "partition", str | None, "Slurm partition.", ()),
        ("time", "time", str | None, "Slurm time limit per task, e.g. 01:00:00.", ()),
        ("gpus", "gpus", str | None, "Slurm GPUs per task.", ()),
        ("cpus", "cpus", int | None, "Slurm CPUs per task (--cpus-per-task).", ()),
        ("mem", "mem", str | None, "Slurm memory per task, e.g. 8G.", ()),
        ("account", "account", str | None, "Slurm account.", ()),
        ("qos", "qos", str | None, "Slurm QOS.", ()),
        ("constraint", "constraint", str | None, "Slurm node constraint.", ()),
        ("sbatch", "extra", list[str], "Extra #SBATCH option as --key=value (repeatable).", ("--sbatch",)),
        ("setup", "setup", list[str], "Shell line run before each task, e.g. 'module load cuda' (repeatable).",
         ("--setup",)),
    ]
}


def slurm_options(command: Callable) -> Callable:
    """Give ``command`` the Slurm options; it receives the ones given as one dict ``slurm``
    (keyed as :func:`comp.grid.launch.launch` takes them, empty ones left out)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "slurm"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option],
                               default=[] if kind == list[str] else None)
             for name, (_, kind, option) in SLURM_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(**kwargs):
        given = {key: kwargs.pop(name) for name, (key, _, _) in SLURM_OPTIONS.items()}
        return command(**kwargs, slurm={k: (list(v) if isinstance(v, (list, tuple)) else v)
                                        for k, v in given.items() if v not in (None, [], ())})

    params = [*own, *added]
    wrapper.__signature__ = signature.replace(parameters=params)  # what typer reads
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
