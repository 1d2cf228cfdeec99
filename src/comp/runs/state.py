"""Saving a run: its new directory (``config.json``), the resumable training state,
the weights and the final evaluation.

Resumable training state is one safetensors file: weights, optimizer, RNGs, counters.

``training_state.safetensors`` holds tensors under ``model/``, ``optim/<i>/<key>`` and
``rng/``; everything else (step, curriculum, early-stop counters, optimizer
hyper-parameters) is JSON in the safetensors header. Nothing is pickled. The file is
written atomically, so a run killed at any moment resumes from the last complete one.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from comp.config import FORMAT, RunConfig, environment
from comp.errors import CompError
from comp.io import load_tensors, read_metadata, save_tensors, write_json
from comp.runs.files import CONFIG_FILE, EVAL_FILE, MODEL_FILE, STATE_FILE, clear_unstarted, run_status, snapshot_path


@dataclass
class TrainState:
    """Counters of a run in progress."""

    step: int = 0  # optimizer steps taken
    hi: int = 0  # longest length currently trained on (curriculum)
    member_hi: dict = field(default_factory=dict)  # per-task curriculum: member task -> its longest length
    member_share: dict = field(default_factory=dict)  # mix=need: member task -> its weight in the next batches
    hits: int = 0  # consecutive evaluations at the target accuracy
    done: bool = False  # finished (steps reached or early stop)
    stop_reason: str = ""  # "steps" | "target" | ""
    tokens: int = 0  # answer and prompt tokens seen (PAD excluded)
    elapsed: float = 0.0  # training seconds so far
    history: list = field(default_factory=list)  # [step, min accuracy] of each evaluation


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters of a model (buffers are rebuilt from the config)."""
    return {name: p.detach() for name, p in model.named_parameters()}


def load_model_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Load parameters strictly: every parameter present, nothing foreign."""
    expected = dict(model.named_parameters())
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CompError(
            f"{where} does not match its config (missing {missing[:3]}, unexpected {extra[:3]}); "
            "it belongs to another model, retrain or fix config.json"
        )
    for name, p in expected.items():
        if tensors[name].shape != p.shape:
            raise CompError(
                f"{where}: {name} has shape {tuple(tensors[name].shape)}, config says {tuple(p.shape)}; "
                "the checkpoint belongs to another model"
            )
    with torch.no_grad():
        for name, p in expected.items():
            p.copy_(tensors[name].to(p.device, p.dtype))


def save_state(
    run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, state: TrainState
) -> None:
    """Write the resumable state of a run, atomically."""
    tensors = {f"model/{k}": v for k, v in model_tensors(model).items()}
    sd = opt.state_dict()
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            tensors[f"optim/{idx}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng/data"] = gen.get_state()
    tensors["rng/torch"] = torch.get_rng_state()
    groups = json.dumps(sd["param_groups"], default=float)  # default: a tensor lr (compile_step) as a number
    meta = {"state": json.dumps(asdict(state)), "param_groups": groups, "format": "comp-state/1"}
    save_tensors(run_dir / STATE_FILE, tensors, meta)


def load_state(
    run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator
) -> TrainState:
    """Restore weights, optimizer, RNGs and counters saved by :func:`save_state`."""
    path = run_dir / STATE_FILE
    meta = read_metadata(path) if path.exists() else {}
    tensors = load_tensors(path, "training state")
    if meta.get("format") != "comp-state/1":
        raise CompError(f"{path} is not a comp training state; resume only runs written by comp train")
    load_model_tensors(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}, str(path))
    groups = json.loads(meta["param_groups"])
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            slots.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": slots, "param_groups": groups})
    gen.set_state(tensors["rng/data"].to(gen.get_state().device))
    torch.set_rng_state(tensors["rng/torch"])
    return TrainState(**json.loads(meta["state"]))


def prepare_run_dir(run_dir: Path, cfg: RunConfig) -> None:
    """Create a new run directory with its config.json; refuse to overwrite a run. A run
    stopped before its first checkpoint has nothing to keep: it starts again."""
    if run_status(run_dir) == "stale":
        print(f"run {run_dir} stopped before its first checkpoint: starting it again", file=sys.stderr)
        clear_unstarted(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise CompError(f"run {run_dir} already exists; resume it with --resume {run_dir}, or pick another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG_FILE, {"format": FORMAT, **cfg.to_dict(), "meta": environment()})


def write_failure(run_dir: Path, error: OSError) -> CompError:
    """The error to give when writing into a run failed (a full disk, a quota): what is
    left to continue from. Checkpoints are written atomically, so the last one is whole."""
    path = run_dir / STATE_FILE
    try:
        step = json.loads(read_metadata(path)["state"])["step"] if path.exists() else None
    except (CompError, KeyError, ValueError):
        step = None
    kept = (f"the last good checkpoint (step {step}) is intact and loadable: free space, then continue with "
            f"comp train --resume {run_dir}" if step is not None else
            "it had no checkpoint yet: free space, then start it again with the same command")
    return CompError(f"could not write to run {run_dir} ({error.strerror or error}); {kept}")


def save_weights(run_dir: Path, model: torch.nn.Module, cfg: RunConfig, step: int) -> None:
    """``model.safetensors``: the weights and, in its header, the config that builds them."""
    meta = {"format": FORMAT, "config": json.dumps(cfg.to_dict()), "step": str(step)}
    save_tensors(run_dir / MODEL_FILE, model_tensors(model), meta)


def write_eval(run_dir: Path, state: TrainState, rows: list[dict]) -> None:
    """``eval.json``, the final evaluation by length, written last: the run is finished."""
    write_json(run_dir / EVAL_FILE, {"run": run_dir.name, "step": state.step, "stop_reason": state.stop_reason,
                                     "elapsed": state.elapsed, "rows": rows})


def save_snapshot(run_dir: Path, tensors: dict[str, torch.Tensor], step: int) -> None:
    """The weights after ``step`` steps, as ``snapshots/step_XXXXXX.safetensors`` (atomically)."""
    save_tensors(snapshot_path(run_dir, step), tensors, {"format": FORMAT, "step": str(step)})
