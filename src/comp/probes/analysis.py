"""Probe a model: one linear probe per residual-stream point and position class.

For a target (see :mod:`comp.probes.sites`), :func:`probe_model` draws a training and a
test set of fresh sequences (different seeds), caches the residual stream with
``run_with_cache(names_filter=...)`` at every distinct point — ``resid_pre`` and
``resid_mid`` of every block and the final ``resid_post`` (``resid_post`` of block l
*is* ``resid_pre`` of block l+1, the same tensor, so it is listed once) — and fits a
probe per (point, position class) on the true labels and on the control task.

Result: ``{"target", "layers", "positions", "rows": [{"layer", "hook", "position",
"acc", "control_acc", "selectivity", "chance", "n_classes", "n_train_sites",
"n_test_sites"}, ...]}``; a cell whose class has no site for the target (``s_prev`` at
EoI) has ``acc = None``.
"""

from __future__ import annotations

import torch
from transformer_lens.utilities import get_act_name

from comp.catalog import EVAL_SEED, N_SEQUENCES
from comp.errors import CompError
from comp.probes.linear import control_labels, probe_score
from comp.probes.sites import CONDITIONS, TARGETS, UNDEFINED, find_sites, task_classes
from comp.provenance import recorded
from comp.resources import check_fits, chunk_size
from comp.runs.load import load_run_config, load_run_for_lengths
from comp.runs.names import resolve_run
from comp.tasks import LengthRange, Task

TEST_SEED_OFFSET = 1_000_003  # test sequences: a different seed from the training ones
CONTROL_SEED_OFFSET = 2_000_006  # the control task's random map


def residual_points(model) -> list[tuple[str, str]]:
    """(label, hook name) of every distinct residual-stream point, from the embeddings up."""
    n = model.cfg.n_layers
    points = []
    for layer in range(n):
        points.append((f"resid_pre {layer}", get_act_name("resid_pre", layer)))
        if not model.cfg.attn_only:
            points.append((f"resid_mid {layer}", get_act_name("resid_mid", layer)))
    points.append((f"resid_post {n - 1}", get_act_name("resid_post", n - 1)))
    return points


@torch.no_grad()
def residual_activations(model, tokens: torch.Tensor, hooks: list[str], batch_size: int = 256) -> dict[str, torch.Tensor]:
    """``{hook: [batch, pos, d_model]}`` for the given hook names, in chunks of ``batch_size``."""
    wanted = set(hooks)
    rows, width = tokens.shape
    check_fits(rows * width * len(hooks) * model.cfg.d_model * 4, tokens.device,
               f"the residual stream of {rows} probe sequences of {width} tokens at {len(hooks)} points",
               "lower --n-train/--n-test or use shorter --lengths")
    batch_size = chunk_size(model.cfg, width, min(rows, batch_size), tokens.device, cached_patterns=0,
                            what="probe activations", lower="use shorter --lengths")
    chunks = []
    for lo in range(0, tokens.shape[0], batch_size):
        _, cache = model.run_with_cache(tokens[lo : lo + batch_size], names_filter=lambda name: name in wanted)
        chunks.append({h: cache[h] for h in hooks})
    return {h: torch.cat([c[h] for c in chunks]) for h in hooks}


def check_target(task: Task, target: str) -> None:
    """A clear error for a target that does not exist or cannot vary in this task."""
    if target not in TARGETS:
        raise CompError(f"unknown probe target {target!r}; choose one of: {', '.join(TARGETS)}")
    if target == "task" and len(task.components()) < 2:
        raise CompError("target 'task' needs a multi-task run (comp train multi --tasks ...); this run has one task")


@torch.no_grad()
def probe_model(
    model,
    task: Task,
    target: str,
    lengths: "str | LengthRange",
    n_train: int = N_SEQUENCES,
    n_test: int = N_SEQUENCES,
    seed: int = EVAL_SEED,
    steps: int = 200,
    weight_decay: float = 1e-3,
) -> dict:
    """Probe accuracy and selectivity of ``target`` at every residual point and position class."""
    check_target(task, target)
    if n_train < 1 or n_test < 1:
        raise CompError(f"--n-train and --n-test must be at least 1, got {n_train} and {n_test}")
    lengths = LengthRange.parse(lengths)
    device = next(model.parameters()).device
    train = task.sample(torch.Generator().manual_seed(seed), lengths, n_train).to(device)
    test = task.sample(torch.Generator().manual_seed(seed + TEST_SEED_OFFSET), lengths, n_test).to(device)
    control_gen = torch.Generator().manual_seed(seed + CONTROL_SEED_OFFSET)
    points = residual_points(model)
    hooks = [h for _, h in points]
    acts_train = residual_activations(model, train.tokens, hooks)
    acts_test = residual_activations(model, test.tokens, hooks)

    classes = task_classes(task)
    cells: dict[tuple[str, str], dict] = {}
    for cls in classes:
        s_train, s_test = find_sites(task, train, cls), find_sites(task, test, cls)
        s_train = s_train.select(s_train.labels(target) != UNDEFINED)
        s_test = s_test.select(s_test.labels(target) != UNDEFINED)
        y_train, y_test = s_train.labels(target), s_test.labels(target)
        if len(s_train) == 0 or len(s_test) == 0:
            for label, _ in points:
                cells[label, cls] = {"n_train_sites": len(s_train), "n_test_sites": len(s_test)}
            continue
        c_train, c_test = control_labels(s_train.condition(target), s_test.condition(target), y_train, control_gen)
        for label, hook in points:
            x_train = acts_train[hook][s_train.row, s_train.pos]  # [n_sites, d_model]
            x_test = acts_test[hook][s_test.row, s_test.pos]
            true = probe_score(x_train, y_train, x_test, y_test, steps, weight_decay)
            control = probe_score(x_train, c_train, x_test, c_test, steps, weight_decay)
            cells[label, cls] = {
                "acc": true.acc,
                "control_acc": control.acc,
                "selectivity": true.acc - control.acc,
                "chance": true.chance,
                "n_classes": true.n_classes,
                "n_train_sites": len(s_train),
                "n_test_sites": len(s_test),
            }
    empty = dict.fromkeys(("acc", "control_acc", "selectivity", "chance", "n_classes"))
    rows = [
        {"layer": label, "hook": hook, "position": cls, **empty, **cells[label, cls]}
        for label, hook in points
        for cls in classes
    ]
    return {
        "target": target,
        "description": TARGETS[target],
        "control": f"a fixed random function of ({CONDITIONS[target]})",
        "lengths": str(lengths),
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "layers": [label for label, _ in points],
        "positions": list(classes),
        "rows": rows,
    }


@recorded
def probe_run(ckpt: str, target: str, lengths: str = "", device: str = "cpu", **settings) -> dict:
    """:func:`probe_model` on a trained run; ``lengths`` defaults to its training lengths."""
    spec = LengthRange.parse(lengths) if lengths else load_run_config(resolve_run(ckpt)).train.lengths
    run = load_run_for_lengths(ckpt, [spec.hi], device=device)
    result = probe_model(run.model, run.task, target, spec, **settings)
    meta = {"run": run.name, "path": str(run.path), "task": run.config.task.name, "encoding": run.config.model.encoding}
    return {**meta, **result}
