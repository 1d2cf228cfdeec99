"""Circuit discovery: batched edge patching against one forward per edge, and discovery times.

Rows (``python -m benchmarks --only discovery``):

- ``edge_patching``: every edge of a random 2-layer 4-head model (float64) removed alone,
  by :func:`comp.circuits.edge_patching.run_edges` (the edges into one stage stacked along
  the batch, forking after the layers they share)
  against :func:`~comp.circuits.edge_patching.path_patch_plain` (TransformerLens-style
  path patching, one forward per edge, caches computed once); the same logits (1e-5);
- ``discovery_nodes``: node-level exact discovery of a 2-layer 4-head model (default
  width) on parity lengths 1-16, ``comp circuit``'s default ``--n`` sequences each (goal:
  <= 60 s on the 2-core CPU; wall and CPU seconds, and the load, are reported);
- ``discovery_edges``: edge-level exact discovery of the same model (time reported);
- ``discovery_shortcuts``: node-level discovery (lengths 1-12 x 64) with its exact
  shortcuts and without them (:func:`comp.circuits.circuit_eval.distinct_rows`,
  :mod:`comp.circuits.mid_layer`), alternating rounds: the same circuit, CPU seconds.

The model is random (discovery's search does the same work on any model; the check that
the model solves its task is skipped). Ratios compare figures of the same run only.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

import torch

from comp.catalog import N_SEQUENCES
from comp.circuits.circuit_eval import EdgeEvaluator
from comp.circuits.data import analysis_groups
from comp.circuits.discover import discover
from comp.circuits.edge_patching import path_patch_plain, run_edges
from comp.circuits.graph import Graph
from comp.model import ModelConfig, build_model
from comp.tasks import make_task

if TYPE_CHECKING:  # pragma: no cover
    from benchmarks.common import Options, Row


def model_2l4h(device: str, dtype: torch.dtype = torch.float32, d_model: int = 64):
    model = build_model(ModelConfig(n_layers=2, n_heads=4, d_model=d_model, n_ctx=64), seed=0, device=device).eval()
    return model if dtype == torch.float32 else model.to(dtype)


def edge_patching(opts: "Options", length: int, n: int) -> "Row":
    from benchmarks.common import Row, Timer

    model = model_2l4h(opts.device, torch.float64)
    group = analysis_groups(make_task("parity"), [length], n, seed=0, device=opts.device)[0]
    ev = EdgeEvaluator(model, Graph.of(model, split_positions=False), [group])
    last = lambda logits: logits[:, :, -1]  # noqa: E731  [k, B, d_vocab]: keep what both compare
    stages = torch.tensor([ev.stage(e) for e in ev.units])
    ours = torch.zeros(len(ev.units), n, model.cfg.d_vocab, dtype=torch.float64)
    with Timer(opts.torch_device) as ours_t:
        for st in stages.unique().tolist():  # edges into one stage share the layers before it
            idx = (stages == st).nonzero()[:, 0]
            removed = torch.zeros(len(idx), len(ev.units), dtype=torch.float64)
            removed[torch.arange(len(idx)), idx] = 1
            ours[idx] = run_edges(model, group.batch.tokens, ev.masks(0, removed), ev.ablated[0], last, ev.max_rows)
    with Timer(opts.torch_device) as plain_t:
        _, clean = model.run_with_cache(group.batch.tokens)
        _, reference = model.run_with_cache(group.reference.tokens)
        plain = torch.stack([path_patch_plain(model, group.batch.tokens, clean, reference, e.sender, e.receiver)[:, -1]
                             for e in ev.units])
    diff = (ours - plain).abs().max().item()
    assert diff < 1e-5, diff
    ratio = plain_t.seconds / ours_t.seconds
    return Row("edge_patching", f"seconds, every edge of a 2L4H model patched alone, length {length}: one forward per edge / batched",
               comp=ours_t.seconds, baseline=plain_t.seconds, ratio=ratio, goal="> 1", met=ratio > 1,
               note=f"{len(ev.units)} edges x {n} sequences, same logits (max diff {diff:.1e})",
               extra={"edges": len(ev.units), "max_diff": diff})


def discovery_time(opts: "Options", level: str, lengths: list[int], n: int, goal_s: "float | None") -> "Row":
    from benchmarks.common import Row

    model = model_2l4h(opts.device)
    groups = analysis_groups(make_task("parity"), lengths, n, seed=0, device=opts.device)
    t0, c0 = time.perf_counter(), time.process_time()
    r = discover(model, groups, level, "exact", require_solved=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    kept, total = (r["n_nodes"], r["n_nodes_total"]) if level == "nodes" else (r["n_edges"], r["n_edges_total"])
    rows = sum(len(g.batch.tokens) for g in groups)
    return Row(f"discovery_{level}", f"seconds, {level}-level exact discovery, 2L4H d64, lengths "
               f"{lengths[0]}-{lengths[-1]} x {n} sequences", comp=seconds,
               goal=f"<= {goal_s:.0f} s" if goal_s else "", met=seconds <= goal_s if goal_s else None,
               note=f"kept {kept} of {total} {level} (random model); {cpu:.0f} s of CPU time, "
                    f"load average {os.getloadavg()[0]:.1f}",
               extra={"kept": kept, "total": total, "cpu_s": cpu, "rows": rows, "load_avg_1m": os.getloadavg()[0]})


def shortcuts(opts: "Options", lengths: list[int], n: int, rounds: int) -> "Row":
    """Node-level discovery with discovery's exact shortcuts (distinct rows run once,
    copies started after a shared attention layer) and without them, alternating: the
    same circuit, the CPU seconds of each (the best round)."""
    from unittest import mock

    from benchmarks.common import Row
    from comp.circuits import circuit_eval

    model = model_2l4h(opts.device)
    groups = analysis_groups(make_task("parity"), lengths, n, seed=0, device=opts.device)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    found: dict[bool, list[str]] = {}
    for _ in range(rounds):
        for fast in (False, True):
            plain = mock.patch.multiple(circuit_eval, distinct_rows=lambda g: (g, None), start_layer=lambda m, k: None)
            with contextlib.nullcontext() if fast else plain:
                c0 = time.process_time()
                found[fast] = discover(model, groups, "nodes", "exact", require_solved=False)["nodes"]
                cpu[fast].append(time.process_time() - c0)
    assert found[True] == found[False], found
    ratio = min(cpu[False]) / min(cpu[True])
    return Row("discovery_shortcuts", f"CPU seconds, node-level exact discovery, 2L4H d64, lengths {lengths[0]}-{lengths[-1]} "
               f"x {n}: without / with the shortcuts", comp=min(cpu[True]), baseline=min(cpu[False]), ratio=ratio,
               goal="> 1", met=ratio > 1, note=f"same circuit ({len(found[True])} nodes), best of {rounds} alternating "
               f"rounds, load average {os.getloadavg()[0]:.1f}", extra={"fast_cpu_s": cpu[True], "plain_cpu_s": cpu[False]})


def bench(opts: "Options") -> list["Row"]:
    """The suite's rows; ``quick``: tiny sizes."""
    if opts.quick:
        return [edge_patching(opts, 3, 2), discovery_time(opts, "nodes", [3], 4, 60.0),
                discovery_time(opts, "edges", [3], 2, None), shortcuts(opts, [2, 3], 8, 1)]
    n = N_SEQUENCES  # `comp circuit`'s default --n
    return [edge_patching(opts, 8, 16), discovery_time(opts, "nodes", list(range(1, 17)), n, 60.0),
            discovery_time(opts, "edges", [4, 8, 12, 16], 16, None), shortcuts(opts, list(range(1, 13)), 64, 2)]
