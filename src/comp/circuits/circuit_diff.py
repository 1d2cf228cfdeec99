"""Two discovered circuits compared (each a :class:`comp.circuits.discover.CircuitResult` as a dict).

:func:`diff_circuits`: shared and different nodes and edges, their Jaccard overlap, and
roles matched: a node only in one circuit is paired with a node only in the other of the
same kind, layer and position class whose outgoing edges go to the most similar receivers
(``L1H2@answer`` in one run playing ``L1H0@answer``'s part).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from comp.circuits.graph import ALL, stage
from comp.errors import CompError

NEEDED = ("nodes", "edges", "level", "run")


@dataclass
class CircuitDiff:
    a: str
    b: str
    shared_nodes: list[str]
    only_a_nodes: list[str]
    only_b_nodes: list[str]
    node_jaccard: float
    shared_edges: list[str]
    only_a_edges: list[str]
    only_b_edges: list[str]
    edge_jaccard: float
    roles_matched: list[dict]  # {"a": node, "b": node, "overlap": Jaccard of their receivers}

    def to_dict(self) -> dict:
        return asdict(self)


def check_circuit(data: dict, where: str) -> dict:
    missing = [k for k in NEEDED if k not in data]
    if missing:
        raise CompError(f"{where} is not a comp circuit JSON (missing {', '.join(missing)}); write one with comp circuit --json")
    return data


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _kind(node: str) -> tuple:
    """(kind, layer, class) of a node label such as ``L1H0@answer``."""
    name, _, cls = node.partition("@")
    kind = "head" if re.fullmatch(r"L\d+H\d+", name) else re.sub(r"\d+", "", name)
    return kind, stage(name, 10**6) if name != "logits" else -1, cls


def _receivers(circuit: dict, node: str) -> set[str]:
    """Where a node's kept edges go, with head numbers dropped (``L1H*.v``)."""
    name, _, cls = node.partition("@")
    return {re.sub(r"H\d+", "H*", e["receiver"]) for e in circuit["edges"] if e["sender"] == name and (e["cls"] in (cls, ALL))}


def diff_circuits(a: dict, b: dict) -> CircuitDiff:
    """Compare two circuits (module docstring)."""
    na, nb = set(a["nodes"]), set(b["nodes"])
    ea, eb = {e["label"] for e in a["edges"]}, {e["label"] for e in b["edges"]}
    matched, free = [], sorted(nb - na)
    for node in sorted(na - nb):
        same = [m for m in free if _kind(m) == _kind(node)]
        if same:
            best = max(same, key=lambda m: _jaccard(_receivers(a, node), _receivers(b, m)))
            matched.append({"a": node, "b": best, "overlap": _jaccard(_receivers(a, node), _receivers(b, best))})
            free.remove(best)
    return CircuitDiff(
        a=a["run"], b=b["run"], shared_nodes=sorted(na & nb), only_a_nodes=sorted(na - nb), only_b_nodes=sorted(nb - na),
        node_jaccard=_jaccard(na, nb), shared_edges=sorted(ea & eb), only_a_edges=sorted(ea - eb),
        only_b_edges=sorted(eb - ea), edge_jaccard=_jaccard(ea, eb), roles_matched=matched)
