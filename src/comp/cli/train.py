"""``comp train``: its options as a :class:`comp.train.request.TrainRequest`, planned and run by the library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from comp.catalog import ENCODING_HELP as PE_HELP
from comp.catalog import TASK_NAMES, TRAIN_DEFAULTS
from comp.cli.common import check_output_dir, user_errors
from comp.cli.options import QUIET, SETS
from comp.presets import HELP as PRESET_HELP
from comp.signals import EXIT_INTERRUPTED, stop_on_signals
from comp.views.tables import print_table

if TYPE_CHECKING:  # pragma: no cover
    from comp.train.request import TrainRequest

TASK_HELP = f"Task to learn: {', '.join([*TASK_NAMES, 'multi'])}."

def _h(section: str, name: str, text: str) -> str:
    return f"{text} (default: {TRAIN_DEFAULTS[section, name]})"


def train_cli(
    task: str | None = typer.Argument(None, help=TASK_HELP, show_default=False),
    pe: str | None = typer.Option(None, "--pe", help=_h("model", "encoding", PE_HELP)),
    seed: int | None = typer.Option(None, help=_h("train", "seed", "Seed of weights and data.")),
    seeds: str | None = typer.Option(
        None, help="Train several seeds at once in one process, e.g. 0-31 or 0,1,5: one run directory each."
    ),
    steps: int | None = typer.Option(None, help=_h("train", "steps", "Optimizer steps (also extends a --resume).")),
    batch_size: int | None = typer.Option(None, help=_h("train", "batch_size", "Sequences per step.")),
    lr: float | None = typer.Option(None, help=_h("train", "lr", "Peak learning rate.")),
    train_lengths: str | None = typer.Option(None, help=_h("train", "train_lengths", "Training lengths lo-hi.")),
    eval_lengths: str | None = typer.Option(
        None, help="Lengths of the final evaluation, e.g. 1-64 (default: the training lengths)"
    ),
    curriculum: bool | None = typer.Option(
        None, "--curriculum/--no-curriculum", help=_h("train", "curriculum", "Widen lengths as they are solved.")
    ),
    curriculum_per_task: bool | None = typer.Option(
        None, "--curriculum-per-task/--no-curriculum-per-task",
        help=_h("train", "curriculum_per_task", "Multi: each member task widens its own lengths on its own accuracy "
                "(implies --curriculum)."),
    ),
    mix: str | None = typer.Option(
        None, help=_h("train", "mix", "Multi: rows per member task, even or need (by 1 - its lowest accuracy; "
                      "implies --curriculum-per-task).")),
    target_acc: float | None = typer.Option(None, help=_h("train", "target_acc", "Early-stop accuracy (0: off).")),
    n_layers: int | None = typer.Option(None, help=_h("model", "n_layers", "Transformer blocks.")),
    n_heads: int | None = typer.Option(None, help=_h("model", "n_heads", "Heads per layer.")),
    d_model: int | None = typer.Option(None, help=_h("model", "d_model", "Residual width.")),
    d_mlp: int | None = typer.Option(None, help=_h("model", "d_mlp", "MLP width (0: 4*d_model).")),
    attn_only: bool | None = typer.Option(None, "--attn-only/--no-attn-only", " /--with-mlp", help=_h("model", "attn_only", "Drop MLPs.")),
    n_ctx: int | None = typer.Option(None, help=_h("model", "n_ctx", "Longest sequence in tokens.")),
    slack: str | None = typer.Option(
        None, help=_h("task", "slack", "Filler tokens between EoI and the answer: a number, or L (as many as the input length).")
    ),
    tasks: str | None = typer.Option(None, help="Members of 'multi', e.g. parity,copy,polynomial."),
    name: str | None = typer.Option(
        None, help="Run name (default: <task>-<pe>-s<seed>); with --seeds, <name>-s<seed>, or {seed} marks the seed's place."
    ),
    out: Path | None = typer.Option(None, help="Runs directory (default: $COMP_RUNS_DIR or runs)"),
    resume: Path | None = typer.Option(
        None, help="Continue the run in this directory where it stopped (with --seeds: its <name>-s<seed> siblings, "
        "or the directories the path gives with {seed} filled in)."
    ),
    device: str | None = typer.Option(None, help=_h("train", "device", "auto, cpu, cuda, cuda:N.")),
    compile: bool | None = typer.Option(None, "--compile/--no-compile", help=_h("train", "compile", "torch.compile on CUDA.")),
    wandb: bool | None = typer.Option(None, "--wandb/--no-wandb", help=_h("train", "wandb", "Log to wandb (offline by default).")),
    wandb_group: str | None = typer.Option(None, help="wandb group name."),
    config: Path | None = typer.Option(None, help="JSON/YAML file with task/model/train sections."),
    preset: str | None = typer.Option(None, help=PRESET_HELP),
    set_: list[str] = SETS,
    quiet: bool = QUIET,
    init_from: str | None = typer.Option(None, help="Start from this finished run's weights (same model shape)."),
    freeze: str | None = typer.Option(None, help="Groups not trained: embed,unembed,attn,mlp,norm,layerN,attnN,mlpN."),
    save_every: str | None = typer.Option(
        None, help="Keep weight snapshots: log (0,1,2,4,... and evaluations) or steps like 0,50,100."
    ),
) -> None:
    """Train a model on a task; saves runs/<task>-<pe>-s<seed>/ and prints accuracy by length.

    --seeds 0-31 trains 32 seeds together in one process (vectorized over seeds), one run directory each.
    """
    _train(request_of(locals()), quiet)


def request_of(params: dict) -> TrainRequest:
    """The :class:`TrainRequest` of ``comp train``'s parsed options."""
    from comp.train.request import TrainRequest

    p = dict(params)
    settings = {key: p[option] for key, option in SETTING_OPTIONS.items()}
    settings["tasks"] = [t for t in p["tasks"].split(",") if t] if p["tasks"] else None
    settings["freeze"] = [g for g in p["freeze"].split(",") if g] if p["freeze"] else None
    return TrainRequest(task=p["task"], settings=settings, config_file=p["config"], sets=list(p["set_"] or []), preset=p["preset"],
                        seed=p["seed"], seeds=p["seeds"], steps=p["steps"], device=p["device"], name=p["name"],
                        out=p["out"], resume=p["resume"])


# setting (a field of the task/model/train config) -> the train_cli parameter that gives it
SETTING_OPTIONS = {
    "encoding": "pe", "batch_size": "batch_size", "lr": "lr", "train_lengths": "train_lengths",
    "final_eval_lengths": "eval_lengths", "curriculum": "curriculum",
    "curriculum_per_task": "curriculum_per_task", "mix": "mix", "target_acc": "target_acc",
    "n_layers": "n_layers", "n_heads": "n_heads", "d_model": "d_model", "d_mlp": "d_mlp", "attn_only": "attn_only",
    "n_ctx": "n_ctx", "slack": "slack", "compile": "compile", "wandb": "wandb", "wandb_group": "wandb_group",
    "init_from": "init_from", "save_every": "save_every",
}


@user_errors
def _train(request: TrainRequest, quiet: bool) -> None:
    from comp.train.request import plan_training, run_training, seed_summary

    check_output_dir(request.out)
    plan = plan_training(request)
    with stop_on_signals() as stop:  # SIGUSR1/SIGTERM: checkpoint now, exit 75 (resumable)
        results = run_training(plan, quiet=quiet, should_stop=stop)
    if any(r.interrupted for r in results):
        typer.echo(f"stopped by a signal at step {results[0].state.step}; checkpoint saved, continue with: "
                   f"comp train {plan.resume_command()}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if len(results) == 1:
        r = results[0]
        print_table(
            r.eval_rows,
            ["task", "length", "acc_generate", "acc_cot", "acc_answer", "loss"],
            title=f"{r.run_dir.name}: step {r.state.step} ({r.state.stop_reason}), {r.state.elapsed:.0f}s",
        )
    else:
        print_table([seed_summary(r) for r in results], ["run", "step", "stop", "min_acc_generate", "mean_acc_generate"],
                    title=f"{len(results)} seeds, trained together")
    for r in results:
        print(f"saved {r.run_dir}")
