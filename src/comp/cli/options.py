"""Options shared by several commands, each defined once: its name, help and default.

Analyses (``eval``, ``heads``, ``ablate``, ``patch``, ``probe``, ``viz``) take ``--ckpt``,
``--device`` and ``--json`` from here; the evaluation-set ``--data-seed`` (``--seed`` still accepted) defaults to
:data:`comp.catalog.EVAL_SEED` in every command, and ``--n`` to :data:`comp.catalog.N_SEQUENCES`
in every command (the help text may say what a sequence is there: pairs in ``patch``).
``comp grid`` and ``comp lengthgen`` get the Slurm options by :func:`slurm_options`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from comp.catalog import EVAL_SEED, N_SEQUENCES
from comp.errors import CompError

CKPT = typer.Option(..., help="Run name under runs/ or a run directory.")
# comp dynamics and comp crosstask took the run positionally; it is --ckpt there too now (the positional form still works)
CKPT_OR_POSITIONAL = typer.Option("", "--ckpt", help="Run name under runs/ or a run directory.")
POSITIONAL_RUN = typer.Argument("", hidden=True, metavar="RUN", help="Deprecated: the run, as --ckpt gives it.")


def one_run(ckpt: str, positional: str) -> str:
    """The run of a command that takes ``--ckpt RUN`` and, deprecated, ``RUN`` positionally."""
    if ckpt and positional and ckpt != positional:
        raise CompError(f"two runs given ({positional} and --ckpt {ckpt}); give one, as --ckpt RUN")
    if not (ckpt or positional):
        raise CompError("give the run as --ckpt RUN (a run name under runs/ or a run directory)")
    if positional and not ckpt:
        typer.echo(f"note: a run given positionally is deprecated; give it as --ckpt {positional}", err=True)
    return ckpt or positional
DEVICE = typer.Option("cpu", help="cpu, cuda or cuda:N.")
JSON = typer.Option(None, "--json", help="Write the results as JSON here.")
EVAL_SEED_OPTION = typer.Option(EVAL_SEED, "--data-seed", "--seed", help="Seed of the evaluation sets.")
# --seed is the model seed of comp train; analyses call the seed of their inputs --data-seed (--seed still works)
ANALYSIS_SEED = typer.Option(EVAL_SEED, "--data-seed", "--seed",
                             help="Seed of the evaluation sets (the reference set uses seed + 1).")


def data_seed(help: str = "Seed of the evaluation sets.") -> Any:
    """The ``--data-seed`` option (``--seed`` still accepted): :data:`comp.catalog.EVAL_SEED` by default, everywhere."""
    return typer.Option(EVAL_SEED, "--data-seed", "--seed", help=help)


MEMBER = typer.Option("", help="Of a multi-task run, analyse this member task alone, e.g. parity "
                                "(default: every member task).")
ANALYSIS_LENGTHS = typer.Option("", help="Lengths to analyse, e.g. 1-16 (default: the run's training lengths).")
SETS = typer.Option([], "--set", help="Override any setting: --set train.weight_decay=0.1 (repeatable).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars (batch jobs).")



def sequences(help: str = "Sequences per length.") -> Any:
    """The ``--n`` option: one default, :data:`comp.catalog.N_SEQUENCES`, in every command."""
    return typer.Option(N_SEQUENCES, help=help)


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
