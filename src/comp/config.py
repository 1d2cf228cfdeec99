"""Run configuration: what to learn (:class:`TaskConfig`), how (:class:`TrainConfig`),
with which model (:class:`comp.model.ModelConfig`). All of it is saved in every run's
``config.json`` next to package versions and the git commit.

:func:`build_config` makes one from defaults < a ``--config`` file < named options <
``section.key=value`` overrides (:func:`apply_sets`), for every command that trains.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from comp.catalog import EVAL_SEED  # seed of the evaluation sets, in training and in every analysis
from comp.errors import CompError
from comp.model import ModelConfig
from comp.provenance import git_commit, package_versions
from comp.tasks import LengthRange, Task, make_task, parse_lengths
from comp.tasks.base import parse_slack

FORMAT = "comp-run/1"  # marks config.json files written by comp


@dataclass
class TaskConfig:
    """Which task a run learns."""

    name: str = "parity"  # a key of comp.tasks.TASKS, or "multi"
    slack: int | str = 0  # filler tokens between EoI and the answer: a number, or "L" (as many as the input length)
    tasks: list[str] = field(default_factory=list)  # members of a "multi" mixture

    def __post_init__(self) -> None:
        self.slack = parse_slack(self.slack)

    def build(self) -> Task:
        return make_task(self.name, slack=self.slack, tasks=self.tasks or None)


@dataclass
class TrainConfig:
    """Optimisation, data, evaluation and bookkeeping of one training run."""

    seed: int = 0  # seeds the initial weights and the data stream
    steps: int = 2000  # optimizer steps (upper bound when early stopping)
    batch_size: int = 128  # sequences per step
    lr: float = 3e-3  # peak learning rate (AdamW)
    warmup_steps: int = 100  # linear warmup from 0 to lr
    schedule: str = "cosine"  # after warmup: cosine (to min_lr_ratio * lr) | constant
    min_lr_ratio: float = 0.0  # floor of the cosine schedule, as a fraction of lr
    weight_decay: float = 0.0  # AdamW weight decay (matrices only)
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.98  # AdamW beta2
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    train_lengths: str = "1-16"  # input lengths sampled uniformly per sequence
    curriculum: bool = False  # start with short lengths, widen when they are solved
    curriculum_start: int = 4  # longest length at the start of the curriculum
    curriculum_step: int = 4  # lengths added at each widening
    curriculum_threshold: float = 0.95  # min accuracy over current lengths that triggers a widening
    curriculum_per_task: bool = False  # multi: each member task widens its own lengths on its own accuracy (implies curriculum)
    mix: str = "even"  # multi: rows per member task: even | need (by 1 - its lowest accuracy, at least mix_floor; implies curriculum_per_task)
    mix_floor: float = 0.1  # mix=need: the weight of a member at or above every accuracy (so it keeps some rows)
    eval_every: int = 100  # steps between evaluations by length (0: only at the end)
    eval_n: int = 128  # sequences per length in periodic evaluations
    target_acc: float = 0.99  # early stop when every train length reaches this (0 disables)
    patience: int = 2  # consecutive evaluations that must hold the target
    final_eval_lengths: str = ""  # lengths of the final eval.json ("" = train lengths)
    final_eval_n: int = 512  # sequences per length in the final evaluation
    eval_seed: int = EVAL_SEED  # seed of every evaluation set
    ckpt_every: int = 250  # steps between resumable checkpoints
    log_every: int = 25  # steps between metrics.jsonl rows
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast (CUDA only)
    compile: bool = False  # torch.compile the model (CUDA only)
    compile_step: bool = False  # torch.compile the whole step: forward, backward, clip, AdamW, as CUDA graphs (CUDA only)
    fast_kernels: bool = True  # training: fused attention, length buckets (CPU), fused AdamW; false: the hook path, bit-identical to the seed in a --seeds pack
    packing: bool = True  # with fast_kernels on a CPU: sequences packed side by side in rows (comp.model.packed); false: length buckets
    threads: int = 0  # CPU threads for torch (0: leave torch's default)
    wandb: bool = False  # log to Weights & Biases (offline unless logged in and WANDB_MODE=online)
    wandb_project: str = "comp"  # wandb project
    wandb_group: str = ""  # wandb group (grids use the grid's name)
    init_from: str = ""  # start from this run's weights (comp.runs.transfer); "" = fresh weights
    freeze: list[str] = field(default_factory=list)  # parameter groups not trained: embed, attn, mlp, layer0, ...
    parent: dict = field(default_factory=dict)  # filled at start: the init_from run's path, config hash, commit, step
    save_every: str = ""  # weight snapshots: "log" (0,1,2,4,... and evaluations) or steps "0,50,100"; "" = none

    def __post_init__(self) -> None:
        LengthRange.parse(self.train_lengths)
        if self.mix not in ("even", "need"):
            raise CompError(f"unknown mix {self.mix!r}; choose even or need")
        if not 0 < self.mix_floor <= 1:
            raise CompError(f"mix_floor must be in (0, 1], got {self.mix_floor}")
        if self.mix == "need":  # shares follow each member's own evaluation: the per-task curriculum's
            self.curriculum_per_task = True
        if self.curriculum_per_task:  # a curriculum per member task is a curriculum
            self.curriculum = True
        if self.final_eval_lengths:
            parse_lengths(self.final_eval_lengths)
        if self.schedule not in ("cosine", "constant"):
            raise CompError(f"unknown schedule {self.schedule!r}; choose cosine or constant")
        for name in ("steps", "batch_size", "eval_n", "final_eval_n", "ckpt_every", "log_every", "patience"):
            if getattr(self, name) < 1:
                raise CompError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise CompError(f"learning rate must be positive, got {self.lr}")
        if self.save_every:
            from comp.runs.snapshots import parse_save_every

            parse_save_every(self.save_every)

    @property
    def lengths(self) -> LengthRange:
        return LengthRange.parse(self.train_lengths)

    def eval_lengths(self) -> list[int]:
        if self.final_eval_lengths:
            return parse_lengths(self.final_eval_lengths)
        r = self.lengths
        return list(range(r.lo, r.hi + 1))


def _from_dict(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise CompError(f"{where} must be a JSON object of settings")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CompError(f"unknown {where} keys {unknown}; valid keys: {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as e:
        raise CompError(f"bad {where} settings: {e}") from None


@dataclass
class RunConfig:
    """Everything that defines a run."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {"task": asdict(self.task), "model": self.model.to_dict(), "train": asdict(self.train)}

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "RunConfig":
        if not isinstance(data, dict):
            raise CompError(f"{where} must be a JSON object with task/model/train sections")
        unknown = sorted(set(data) - {"task", "model", "train", "format", "meta"})
        if unknown:
            raise CompError(f"unknown {where} sections {unknown}; valid: task, model, train")
        return cls(
            task=_from_dict(TaskConfig, data.get("task", {}), f"{where} task"),
            model=_from_dict(ModelConfig, data.get("model", {}), f"{where} model"),
            train=_from_dict(TrainConfig, data.get("train", {}), f"{where} train"),
        )

    def validate(self) -> Task:
        """Check that the parts fit together; returns the built task."""
        from comp.model import max_length

        task = self.task.build()
        longest = max([self.train.lengths.hi, *self.train.eval_lengths()])
        seq = task.seq_len(longest)
        max_length(self.model, seq)
        if seq > self.model.n_ctx:  # training and its final evaluation run at the model's own context
            raise CompError(
                f"length {longest} needs {seq} tokens but n_ctx={self.model.n_ctx}; train with --n-ctx {seq} or more "
                "(comp eval can still evaluate relative encodings past n_ctx)"
            )
        return task


# ---- building a RunConfig from settings (comp train, comp lengthgen, comp grid) -------------

_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


def default_of(section: str, name: str):
    """The default of setting ``section.name``."""
    return next(f.default for f in fields(_SECTIONS[section]) if f.name == name)


def _coerce(cls, key: str, value: str):
    field_type = next(f.type for f in fields(cls) if f.name == key)
    t = str(field_type)
    if t.startswith("bool"):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise CompError(f"--set {key}={value}: expected true or false")
        return value.lower() in ("true", "1", "yes")
    if t == "int | str":  # a number or a word (task.slack: 2 or L); the field checks which
        return int(value) if value.strip().lstrip("-").isdigit() else value
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
    """Whether the settings class ``cls`` has a setting ``name``."""
    return any(f.name == name for f in fields(cls))


def build_config(task: str, config_file: Path | None, sets: list[str], preset: str | None = None,
                 **options) -> RunConfig:
    """Defaults < ``preset`` (:mod:`comp.presets`) < ``--config`` file < named options < ``--set`` overrides."""
    data: dict = load_config_file(config_file) if config_file else {}
    if not isinstance(data, dict):
        raise CompError(f"config file {config_file} must hold an object with task/model/train sections")
    if preset:
        from comp.presets import merge, preset_settings  # presets name tasks; comp.tasks imports this module

        data = merge(preset_settings(preset, task), data)
    data.setdefault("task", {})["name"] = task
    for key, value in options.items():
        if value is None:
            continue
        section = next(s for s, cls in _SECTIONS.items() if name_in(cls, key))
        data.setdefault(section, {})[key] = value
    apply_sets(data, sets)
    return RunConfig.from_dict(data, where="settings")


def environment() -> dict[str, str]:
    """Package versions and the git commit, stored with every run."""
    import comp

    versions = package_versions()
    return {
        "comp": comp.__version__,
        "torch": versions["torch"],
        "transformer_lens": versions["transformer-lens"],
        "numpy": versions["numpy"],
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }


def load_config_file(path: "str | Path") -> dict:
    """Read a JSON (or YAML) settings file for ``--config``."""
    path = Path(path)
    if not path.exists():
        raise CompError(f"config file {path} does not exist; check the path")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise CompError(f"config file {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CompError(f"config file {path} is not valid JSON ({e.msg} at line {e.lineno})") from None
