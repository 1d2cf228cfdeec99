"""A discovered circuit scored again on other sequences: does the circuit found at the
training lengths still do the task at lengths 64 or 128?

:func:`score_circuit` takes a circuit (a :class:`comp.circuits.discover.CircuitResult`
as a dict, from ``comp circuit --json``), rebuilds the units it was pruned over (nodes or
edges, per position class or not) and scores, on new evaluation sets, the full model, the
circuit alone (faithfulness) and the model with the circuit knocked out (completeness),
with the circuit's own ablation. Nothing is pruned again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from comp.circuits.circuit_diff import check_circuit
from comp.circuits.circuit_eval import EdgeEvaluator, NodeEvaluator
from comp.circuits.data import analysed_task, analysis_groups, load_for_analysis
from comp.circuits.discover import Pruner, Scores, check_ref_n
from comp.circuits.graph import Graph
from comp.config import EVAL_SEED
from comp.errors import CompError


@dataclass
class CircuitScore:
    """A circuit's faithfulness and completeness on ``lengths`` (serialised with ``asdict``)."""

    run: str
    circuit_run: str  # the run the circuit was found on
    level: str
    ablation: str
    found_lengths: list[int]  # where it was found
    lengths: list[int]  # where it is scored now
    n: int
    seed: int
    n_units: int  # kept units (nodes or edges) out of n_units_total
    n_units_total: int
    model: Scores
    circuit: Scores  # the circuit alone, everything else ablated
    knocked_out: Scores  # the model without the circuit
    member: str = ""  # the member task of a multi-task run the circuit was found on, and is scored on
    ref_n: int = 0  # reference sequences per length (the mean ablation's mean is over them)

    def to_dict(self) -> dict:
        return asdict(self)


def removed_mask(circuit: dict, units: list) -> torch.Tensor:
    """``[n_units]`` bool: the units outside ``circuit`` (its kept units are its ``effects`` keys)."""
    if not isinstance(circuit.get("effects"), dict):
        raise CompError("the circuit JSON has no kept units (effects); write it with comp circuit --json")
    kept = set(circuit["effects"])
    labels = [u.label for u in units]
    unknown = sorted(kept - set(labels))
    if unknown:
        raise CompError(f"the circuit names units this model does not have ({', '.join(unknown[:3])}); "
                        "score a circuit on the run it was found on, or one of the same shape")
    return torch.tensor([label not in kept for label in labels])


def score_circuit(model, groups, circuit: dict) -> dict:
    """The full model, the circuit alone and the circuit knocked out on ``groups``: the
    fields of :class:`CircuitScore` that depend on the model only."""
    check_circuit(circuit, "the circuit")
    graph = Graph.of(model, circuit.get("split_positions", True))
    evaluator = NodeEvaluator if circuit["level"] == "nodes" else EdgeEvaluator
    pruner = Pruner(evaluator(model, graph, groups, circuit.get("ablation", "mean")))
    removed = removed_mask(circuit, pruner.ev.units)
    return dict(level=circuit["level"], ablation=circuit.get("ablation", "mean"), n_units=int((~removed).sum()),
                n_units_total=len(removed), model=pruner.scores(torch.zeros_like(removed)),
                circuit=pruner.scores(removed), knocked_out=pruner.scores(~removed))


def score_circuit_run(ckpt: str, circuit: dict, lengths: str = "", n: int = 32, seed: int = EVAL_SEED,
                      device: str = "cpu", ref_n: "int | None" = None) -> CircuitScore:
    """:func:`score_circuit` on a run's evaluation sets at ``lengths`` (default: its training lengths),
    of the member task the circuit was found on (``comp circuit --member``), if any. ``ref_n``:
    reference sequences per length (default None: as the circuit was found with, ``comp circuit
    --ref-n``; 0: ``n``)."""
    check_circuit(circuit, "the circuit")
    if ref_n is None:
        found_ref = circuit.get("ref_n", 0)  # a circuit found without --ref-n: as many as n, here too
        ref_n = found_ref if isinstance(found_ref, int) and found_ref != circuit.get("n") else 0
    ref_n = check_ref_n(ref_n, n, circuit.get("ablation", "mean"))
    run, wanted = load_for_analysis(ckpt, lengths, device)
    member = str(circuit.get("member", ""))
    groups = analysis_groups(analysed_task(run.task, member), wanted, n, seed, device, ref_n)
    found = score_circuit(run.model, groups, circuit)
    return CircuitScore(run=run.name, circuit_run=circuit["run"], found_lengths=list(circuit.get("lengths", [])),
                        lengths=wanted, n=n, seed=seed, member=member, ref_n=ref_n, **found)
