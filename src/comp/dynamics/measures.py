"""What ``comp dynamics`` measures on one snapshot: the :data:`MEASURES` registry.

Each measure maps a model (eval mode, the snapshot's weights) and a :class:`Context`
(the evaluation sets, built once for all snapshots) to named scalars:

- ``acc``: teacher-forced whole-answer accuracy by length (equal to greedy decoding's;
  :func:`comp.train.loop.quick_eval`, the lowest over member tasks), ``acc_L<k>`` for every
  length, ``train_acc`` (lowest over the training lengths) and ``long_acc`` (mean over the
  asked lengths past the training ones);
- ``heads``: the best score over heads of ``iteration``, ``eoi_anchor`` and ``prev_token``
  (:func:`comp.circuits.heads.head_scores` on the training lengths), and where the best
  iteration head is (``iteration_head``, e.g. ``L1H0``);
- ``probe``: the best test accuracy, over residual-stream points, of a linear probe for
  ``x_t`` at answer positions (the input the iteration head must fetch;
  :func:`comp.probes.probe_model`), and its chance level;
- ``circuit``: the size (nodes) and faithfulness of the circuit found by
  :func:`comp.circuits.discover.discover` (exact node pruning); a snapshot that does not
  solve its task yet has none (``None``). Needs circuit discovery in this checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from comp.circuits.data import Group, analysis_groups
from comp.circuits.heads import head_scores
from comp.errors import CompError
from comp.tasks import LengthRange, Task
from comp.train.loop import quick_eval

Value = "float | str | None"
HEAD_SCORES = ("iteration", "eoi_anchor", "prev_token")
PROBE_TARGET = "x_t"
PROBE_POSITION = "answer"


@dataclass
class Context:
    """What every snapshot of one run is measured on."""

    task: Task
    lengths: list[int]  # accuracy lengths (may pass the training ones)
    train_lengths: list[int]
    n: int  # sequences per (member task, length)
    seed: int  # evaluation seed
    device: torch.device
    _groups: "list[Group] | None" = field(default=None, repr=False)

    @property
    def groups(self) -> list[Group]:
        """Evaluation sets on the training lengths (head scores, circuits), built once."""
        if self._groups is None:
            self._groups = analysis_groups(self.task, self.train_lengths, self.n, self.seed, self.device)
        return self._groups


def measure_acc(model, ctx: Context) -> dict:
    accs = quick_eval(model, ctx.task, ctx.lengths, ctx.n, ctx.seed)  # {length: min over member tasks}
    train = [accs[k] for k in ctx.train_lengths if k in accs]
    long = [a for k, a in accs.items() if k > max(ctx.train_lengths)]
    return {**{f"acc_L{k}": a for k, a in accs.items()}, "train_acc": min(train) if train else None,
            "long_acc": sum(long) / len(long) if long else None}


def measure_heads(model, ctx: Context) -> dict:
    rows = head_scores(model, ctx.groups)  # one HeadScore per head
    out: dict = {s: max(getattr(r, s) for r in rows) for s in HEAD_SCORES}
    out["iteration_head"] = max(rows, key=lambda r: r.iteration).component
    return out


def measure_probe(model, ctx: Context) -> dict:
    from comp.probes import probe_model

    spec = LengthRange(min(ctx.train_lengths), max(ctx.train_lengths))
    result = probe_model(model, ctx.task, PROBE_TARGET, spec, n_train=256, n_test=256, seed=ctx.seed, steps=100)
    cells = [r for r in result["rows"] if r["position"] == PROBE_POSITION and r["acc"] is not None]
    if not cells:
        return {f"probe_{PROBE_TARGET}": None, "probe_chance": None}
    best = max(cells, key=lambda r: r["acc"])
    return {f"probe_{PROBE_TARGET}": best["acc"], "probe_chance": best["chance"]}


def measure_circuit(model, ctx: Context) -> dict:
    try:
        from comp.circuits.discover import discover
    except ModuleNotFoundError:
        raise CompError("measure 'circuit' needs circuit discovery (comp circuit), which this checkout lacks; "
                        "use --measures acc,heads,probe") from None
    try:
        found = discover(model, ctx.groups, level="nodes", method="exact")
    except CompError:  # this snapshot does not solve its task yet: no circuit to find
        return {"circuit_nodes": None, "circuit_faithfulness": None}
    circuit = found["circuit"]
    return {"circuit_nodes": float(found["n_nodes"]), "circuit_faithfulness": float(circuit.recovered)}


MEASURES: dict[str, Callable[[object, Context], dict]] = {
    "acc": measure_acc,
    "heads": measure_heads,
    "probe": measure_probe,
    "circuit": measure_circuit,
}


def parse_measures(spec: str) -> list[str]:
    """``"acc,heads"`` -> the measure names, in registry order; an unknown name is a :class:`CompError`."""
    names = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in MEASURES]
    if unknown or not names:
        raise CompError(f"unknown measure {unknown[0] if unknown else spec!r}; choose from {', '.join(MEASURES)} "
                        "(e.g. --measures acc,heads)")
    if "circuit" in names:
        import importlib.util

        if importlib.util.find_spec("comp.circuits.discover") is None:
            measure_circuit(None, None)  # the clear error, before anything runs
    return [m for m in MEASURES if m in names]
