"""Several discovered circuits side by side: which components they share and which only one uses.

The circuits are ``comp circuit --json`` results (:class:`comp.circuits.discover.CircuitResult`
as dicts), typically the per-task circuits of one multi-task run (``comp circuit --member
parity``, ``--member copy``, ...). :func:`shared_components` puts every kept unit of any of
them in one table with the circuits that keep it, at three grains:

- ``nodes``: node labels with their position class (``L1H2@answer``);
- ``components``: the same with position classes merged (``L1H2`` is used if any of
  ``L1H2@input/@eoi/@answer`` is);
- ``edges``: edge labels (``MLP0@input -> L1H0.v``); at node level a circuit holds every
  edge among its kept nodes, so compare edges between edge-level circuits.

Each unit is ``shared`` (kept by every circuit), ``partial`` (by several, not all) or
``specific`` (by exactly one). The ``logits`` node, in every circuit by construction, is
left out (so node Jaccard overlaps here are those of ``comp circuit diff`` without it). Every
pair of circuits is also compared with :func:`comp.circuits.circuit_diff.diff_circuits`
(edge Jaccard, roles matched).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from comp.circuits.circuit_diff import check_circuit, diff_circuits
from comp.circuits.graph import stage
from comp.errors import CompError

Sharing = Literal["shared", "partial", "specific"]
GRAINS: tuple[str, ...] = ("nodes", "components", "edges")
BIG = 10**6  # stage() of a label without knowing the model's depth


@dataclass
class SharedUnit:
    """One unit (node, component or edge) and the circuits that keep it."""

    unit: str
    used_by: list[str]  # names of the circuits that keep it, in the order given
    sharing: Sharing


@dataclass
class PairOverlap:
    """Two circuits compared (:func:`comp.circuits.circuit_diff.diff_circuits`)."""

    a: str
    b: str
    node_jaccard: float  # without the logits node
    component_jaccard: float
    edge_jaccard: float
    roles_matched: list[dict]


@dataclass
class CircuitShare:
    """What ``comp circuit shared`` reports (serialised with ``asdict``)."""

    names: list[str]  # one per circuit: its member task, else its run (or the names given)
    runs: list[str]
    level: str  # of every circuit compared
    sizes: dict[str, dict[str, int]]  # name -> {grain: kept units}
    nodes: list[SharedUnit]
    components: list[SharedUnit]
    edges: list[SharedUnit]
    counts: dict[str, dict[str, int]]  # grain -> {"shared": k, "<a>+<b>": k, ..., "only <a>": k, ...}
    pairs: list[PairOverlap]

    def to_dict(self) -> dict:
        return asdict(self)


def component_of(node: str) -> str:
    """``L1H2@answer`` -> ``L1H2``."""
    return node.partition("@")[0]


def _order(label: str) -> tuple:
    """Forward-pass order of a node, component or edge label (its sender's)."""
    name = label.split(" -> ")[0].partition("@")[0]
    return stage(name, BIG), label


def _units(circuit: dict, grain: str) -> set[str]:
    nodes = {n for n in circuit["nodes"] if n != "logits"}
    if grain == "nodes":
        return nodes
    if grain == "components":
        return {component_of(n) for n in nodes}
    return {e["label"] for e in circuit["edges"]}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _table(sets: dict[str, set[str]]) -> list[SharedUnit]:
    everything = sorted(set().union(*sets.values()), key=_order)
    rows = []
    for unit in everything:
        used = [name for name, s in sets.items() if unit in s]
        sharing = "shared" if len(used) == len(sets) else "specific" if len(used) == 1 else "partial"
        rows.append(SharedUnit(unit, used, sharing))
    return rows


def _counts(rows: list[SharedUnit], names: list[str]) -> dict[str, int]:
    """``{"shared": k, "a+b": k (each group of several, not all, that keeps some unit), "only a": k, ...}``."""
    out = {"shared": sum(r.sharing == "shared" for r in rows)}
    groups = sorted({tuple(r.used_by) for r in rows if r.sharing == "partial"}, key=lambda g: (-len(g), [names.index(n) for n in g]))
    for group in groups:
        out["+".join(group)] = sum(tuple(r.used_by) == group for r in rows)
    for name in names:
        out[f"only {name}"] = sum(r.used_by == [name] for r in rows)
    return out


def circuit_names(circuits: list[dict], fallbacks: list[str]) -> list[str]:
    """Each circuit's name: its member task, else its run; the fallbacks (file names) if two would clash."""
    names = [str(c.get("member") or c["run"]) for c in circuits]
    if len(set(names)) == len(names):
        return names
    if len(set(fallbacks)) == len(fallbacks):
        return list(fallbacks)
    raise CompError("two circuits have the same name; give --names a,b,c (one per circuit)")


def shared_components(circuits: list[dict], names: "list[str] | None" = None) -> CircuitShare:
    """The shared-versus-specific table of ``circuits`` (module docstring). ``names``: one per
    circuit (default: each circuit's member task, else its run)."""
    if len(circuits) < 2:
        raise CompError(f"give at least two circuits to compare (got {len(circuits)})")
    circuits = [check_circuit(c, f"circuit {i + 1}") for i, c in enumerate(circuits)]
    levels = sorted({c["level"] for c in circuits})
    if len(levels) > 1:
        raise CompError(f"the circuits are of different levels ({', '.join(levels)}); compare circuits found with one --level")
    names = names or circuit_names(circuits, [str(c["run"]) for c in circuits])
    if len(names) != len(circuits) or len(set(names)) != len(names):
        raise CompError(f"give one distinct name per circuit ({len(circuits)} circuits, names: {', '.join(names)})")
    tables = {grain: _table({name: _units(c, grain) for name, c in zip(names, circuits)}) for grain in GRAINS}
    pairs = []
    for i in range(len(circuits)):
        for j in range(i + 1, len(circuits)):
            a, b = circuits[i], circuits[j]
            d = diff_circuits(a, b)
            overlap = [_jaccard(_units(a, grain), _units(b, grain)) for grain in ("nodes", "components")]
            pairs.append(PairOverlap(names[i], names[j], *overlap, d.edge_jaccard, d.roles_matched))
    return CircuitShare(
        names=list(names), runs=[str(c["run"]) for c in circuits], level=levels[0],
        sizes={name: {grain: len(_units(c, grain)) for grain in GRAINS} for name, c in zip(names, circuits)},
        nodes=tables["nodes"], components=tables["components"], edges=tables["edges"],
        counts={grain: _counts(tables[grain], names) for grain in GRAINS}, pairs=pairs)
