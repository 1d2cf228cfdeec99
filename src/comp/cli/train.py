"""``comp train``: build a RunConfig from options and call :func:`comp.train.train`."""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path

import typer

from comp.cli.common import print_table, user_errors
from comp.config import RunConfig, TaskConfig, TrainConfig, load_config_file
from comp.encodings import HELP as PE_HELP
from comp.errors import CompError
from comp.model import ModelConfig
from comp.presets import HELP as PRESET_HELP
from comp.presets import merge, preset_settings
from comp.runs import default_run_name, runs_dir
from comp.signals import EXIT_INTERRUPTED, stop_on_signals
from comp.tasks import TASKS
from comp.train import resume_config, train
from comp.train.multiseed import SEED, parse_seeds, resume_seeds, seed_run_dir, seed_run_name, train_seeds

TASK_HELP = f"Task to learn: {', '.join([*TASKS, 'multi'])}."

_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


def _default(section: str, name: str):
    return next(f.default for f in fields(_SECTIONS[section]) if f.name == name)


def _coerce(cls, key: str, value: str):
    field_type = next(f.type for f in fields(cls) if f.name == key)
    t = str(field_type)
    if t.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise CompError(f"--set {key}={value}: expected true or false")
        return value.lower() in ("true", "1", "yes")
    if t.startswith("int"):
        try:
            return int(value)
        except ValueError:
            raise CompError(f"--set {key}={value}: expected an integer") from None
    if t.startswith("float"):
        try:
            return float(value)
        except ValueError:
            raise CompError(f"--set {key}={value}: expected a number") from None
    if t.startswith("list"):
        return [v for v in value.split(",") if v]
    return value


def apply_sets(data: dict, sets: list[str]) -> None:
    """Apply ``section.key=value`` (or bare ``key=value``) overrides to a config dict."""
    for item in sets:
        if "=" not in item:
            raise CompError(f"--set {item!r} needs the form key=value, e.g. --set train.weight_decay=0.1")
        key, value = item.split("=", 1)
        if "." in key:
            section, name = key.split(".", 1)
        else:
            matches = [s for s, cls in _SECTIONS.items() if name_in(cls, key)]
            section, name = (matches[0] if matches else ""), key
        cls = _SECTIONS.get(section)
        if cls is None or not name_in(cls, name):
            valid = sorted(f"{s}.{f.name}" for s, c in _SECTIONS.items() for f in fields(c))
            raise CompError(f"unknown setting {key!r}; valid settings: {', '.join(valid)}")
        data.setdefault(section, {})[name] = _coerce(cls, name, value)


def name_in(cls, name: str) -> bool:
    return any(f.name == name for f in fields(cls))


def build_config(task: str, config_file: Path | None, sets: list[str], preset: str | None = None, **options) -> RunConfig:
    """Defaults < ``--preset`` < ``--config`` file < named options < ``--set`` overrides."""
    data: dict = load_config_file(config_file) if config_file else {}
    if not isinstance(data, dict):
        raise CompError(f"config file {config_file} must hold an object with task/model/train sections")
    if preset:
        data = merge(preset_settings(preset, task), data)
    data.setdefault("task", {})["name"] = task
    for key, value in options.items():
        if value is None:
            continue
        section = next(s for s, cls in _SECTIONS.items() if name_in(cls, key))
        data.setdefault(section, {})[key] = value
    apply_sets(data, sets)
    return RunConfig.from_dict(data, where="settings")


def _h(section: str, name: str, text: str) -> str:
    return f"{text} (default: {_default(section, name)})"


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
    target_acc: float | None = typer.Option(None, help=_h("train", "target_acc", "Early-stop accuracy (0: off).")),
    n_layers: int | None = typer.Option(None, help=_h("model", "n_layers", "Transformer blocks.")),
    n_heads: int | None = typer.Option(None, help=_h("model", "n_heads", "Heads per layer.")),
    d_model: int | None = typer.Option(None, help=_h("model", "d_model", "Residual width.")),
    d_mlp: int | None = typer.Option(None, help=_h("model", "d_mlp", "MLP width (0: 4*d_model).")),
    attn_only: bool | None = typer.Option(None, "--attn-only/--with-mlp", help=_h("model", "attn_only", "Drop MLPs.")),
    n_ctx: int | None = typer.Option(None, help=_h("model", "n_ctx", "Longest sequence in tokens.")),
    slack: int | None = typer.Option(None, help=_h("task", "slack", "Filler tokens between EoI and the answer.")),
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
    set_: list[str] = typer.Option([], "--set", help="Override any setting: --set train.weight_decay=0.1 (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (batch jobs)."),
) -> None:
    """Train a model on a task; saves runs/<task>-<pe>-s<seed>/ and prints accuracy by length.

    --seeds 0-31 trains 32 seeds together in one process (vectorized over seeds), one run directory each.
    """
    _train(**locals())


@user_errors
def _train(task, pe, seed, seeds, steps, batch_size, lr, train_lengths, eval_lengths, curriculum, target_acc, n_layers,
           n_heads, d_model, d_mlp, attn_only, n_ctx, slack, tasks, name, out, resume, device, compile, wandb,
           wandb_group, config, set_, quiet, preset=None) -> None:
    seed_list = parse_seeds(seeds) if seeds is not None else None
    if seed_list is not None and seed is not None:
        raise CompError("give either --seed N (one run) or --seeds 0-31 (several), not both")
    if resume is not None:
        if seed_list is not None:
            run_dirs = [seed_run_dir(Path(resume), s) for s in seed_list]
            cfg, seed_list = resume_seeds(run_dirs, steps)
        else:
            cfg = resume_config(Path(resume), steps)
            run_dirs = [Path(resume)]
        if device is not None:
            cfg.train.device = device
    else:
        if task is None:
            raise CompError(f"missing TASK; e.g. comp train parity (tasks: {', '.join([*TASKS, 'multi'])})")
        cfg = build_config(
            task, config, set_, preset,
            encoding=pe, seed=seed, steps=steps, batch_size=batch_size, lr=lr, train_lengths=train_lengths,
            final_eval_lengths=eval_lengths, curriculum=curriculum, target_acc=target_acc, n_layers=n_layers,
            n_heads=n_heads, d_model=d_model, d_mlp=d_mlp, attn_only=attn_only, n_ctx=n_ctx, slack=slack,
            tasks=[t for t in tasks.split(",") if t] if tasks else None, device=device, compile=compile,
            wandb=wandb, wandb_group=wandb_group,
        )
        base = out or runs_dir()
        if seed_list is not None:
            run_dirs = [base / (seed_run_name(name, s) if name else default_run_name(task, cfg.model.encoding, s))
                        for s in seed_list]
        else:
            seed = cfg.train.seed
            run_dirs = [base / (name.replace(SEED, str(seed)) if name else default_run_name(task, cfg.model.encoding, seed))]
    with stop_on_signals() as stop:  # SIGUSR1/SIGTERM: checkpoint now, exit 75 (resumable)
        if seed_list is not None:
            results = train_seeds(cfg, seed_list, run_dirs, resume=resume is not None, quiet=quiet, should_stop=stop)
        else:
            results = [train(cfg, run_dirs[0], resume=resume is not None, quiet=quiet, should_stop=stop)]
    if any(r.interrupted for r in results):
        where = resume or (base / name if seed_list is not None and name and SEED in name else run_dirs[0])
        again = f" --seeds {seeds}" if seed_list is not None else ""
        typer.echo(f"stopped by a signal at step {results[0].state.step}; checkpoint saved, continue with: "
                   f"comp train --resume {shlex.quote(str(where))}{again}", err=True)
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


def seed_summary(result) -> dict:
    """One line of the multi-seed table: where a run stopped and its final accuracy."""
    accs = [row["acc_generate"] for row in result.eval_rows]
    return {
        "run": result.run_dir.name,
        "step": result.state.step,
        "stop": result.state.stop_reason or "interrupted",
        "min_acc_generate": min(accs) if accs else None,
        "mean_acc_generate": sum(accs) / len(accs) if accs else None,
    }
