"""Transfer: start a run from another run's weights, with some parameter groups frozen.

    comp train parity --init-from runs/polynomial-rotary-s0 --freeze attn

The parent must be a finished run (its ``model.safetensors``) of the same model shape
(vocabularies agree across tasks). What the child started from is recorded in its
``config.json`` under ``train.parent``: the parent's path, a hash of its config, its git
commit and its step (:func:`parent_record`). The frozen groups are part of the config,
so ``comp train --resume`` rebuilds the same trainable set and optimizer.

Frozen groups (:data:`FREEZE_GROUPS`, one predicate on parameter names each):
``embed`` (token and learned position embeddings), ``unembed``, ``attn``, ``mlp``,
``norm`` (LayerNorms), and per block ``layerN``, ``attnN``, ``mlpN``. Frozen parameters
have ``requires_grad=False`` and are left out of the optimizer: no update, no state.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from comp.errors import CompError
from comp.io import load_tensors, read_json, read_metadata
from comp.runs.files import CONFIG_FILE, MODEL_FILE
from comp.runs.names import resolve_run

FREEZE_GROUPS: dict[str, Callable[[str], bool]] = {
    "embed": lambda n: n.startswith(("embed.", "pos_embed.")),
    "unembed": lambda n: n.startswith("unembed."),
    "attn": lambda n: ".attn." in n,
    "mlp": lambda n: ".mlp." in n,
    "norm": lambda n: ".ln" in n or n.startswith("ln_final."),
}
_PER_BLOCK = re.compile(r"^(layer|attn|mlp)(\d+)$")  # layer0, attn1, mlp0


def _matcher(group: str) -> Callable[[str], bool]:
    if group in FREEZE_GROUPS:
        return FREEZE_GROUPS[group]
    m = _PER_BLOCK.match(group)
    if m is None:
        raise CompError(f"unknown --freeze group {group!r}; choose from {', '.join(FREEZE_GROUPS)}, "
                        "layerN, attnN, mlpN (e.g. --freeze embed,attn0)")
    kind, layer = m.group(1), m.group(2)
    prefix = f"blocks.{layer}."
    if kind == "layer":
        return lambda n: n.startswith(prefix)
    return lambda n: n.startswith(prefix + kind + ".")


def frozen_names(model: torch.nn.Module, groups: list[str]) -> set[str]:
    """The parameter names the ``groups`` cover; a group that covers nothing is an error."""
    names = [n for n, _ in model.named_parameters()]
    out: set[str] = set()
    for group in groups:
        hit = {n for n in names if _matcher(group)(n)}
        if not hit:
            raise CompError(f"--freeze {group!r} matches no parameter of this model (e.g. a layer it does not have, "
                            "or mlp with --attn-only)")
        out |= hit
    return out


def freeze(model: torch.nn.Module, groups: list[str]) -> set[str]:
    """Turn off gradients of the ``groups``' parameters; returns their names."""
    names = frozen_names(model, groups)
    for n, p in model.named_parameters():
        if n in names:
            p.requires_grad_(False)
    return names


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimizer updates (all but the frozen ones), in model order."""
    return [p for p in model.parameters() if p.requires_grad]


def config_hash(data: dict) -> str:
    """A short hash of a run's settings (task, model, train sections of its config.json)."""
    core = {k: data.get(k) for k in ("task", "model", "train")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:16]


def parent_record(spec: "str | Path") -> dict:
    """Where a child run starts: the parent's path, config hash, git commit and step."""
    path = resolve_run(spec)
    model_file = path / MODEL_FILE
    if not model_file.exists():
        raise CompError(f"--init-from {spec}: {path} has no {MODEL_FILE} (not finished); finish it "
                        f"(comp train --resume {path}) or pick a finished run")
    data = read_json(path / CONFIG_FILE, "parent run config")
    meta = read_metadata(model_file)
    return {"path": str(path.resolve()), "config_hash": config_hash(data),
            "commit": data.get("meta", {}).get("git_commit", "unknown"), "step": int(meta.get("step", -1)),
            "task": data.get("task", {}).get("name", "")}


def load_parent(model: torch.nn.Module, record: dict) -> None:
    """Copy the parent's weights into ``model``; a parameter of another name or shape is one clear error."""
    path = Path(record["path"])
    tensors = load_tensors(path / MODEL_FILE, "parent checkpoint")
    own = dict(model.named_parameters())
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    bad = [n for n in own if n in tensors and tensors[n].shape != own[n].shape]
    if missing or extra or bad:
        what = (f"{bad[0]} is {tuple(tensors[bad[0]].shape)} there, {tuple(own[bad[0]].shape)} here" if bad
                else f"parameters missing {missing[:2]}, unexpected {extra[:2]}")
        raise CompError(f"--init-from {path}: its model does not match this one ({what}); give this run the "
                        f"parent's model settings (see its {CONFIG_FILE}: n_layers, n_heads, d_model, d_mlp, "
                        "n_ctx, encoding, attn_only)")
    with torch.no_grad():
        for n, p in own.items():
            p.copy_(tensors[n].to(p.device, p.dtype))
