"""Two views of a discovered circuit (a :class:`comp.circuits.discover.CircuitResult` as a dict).

- :func:`diff_circuits`: shared and different nodes and edges of two circuits, their
  Jaccard overlap, and roles matched: a node only in one circuit is paired with a node
  only in the other of the same kind, layer and position class whose outgoing edges go
  to the most similar receivers (``L1H2@answer`` in one run playing ``L1H0@answer``'s part);
- :func:`circuit_figure`: the circuit as a plotly graph, nodes by layer (columns: embed,
  attention and MLP of each layer, logits) and position class (bands of rows), edge width
  by effect.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import plotly.graph_objects as go

from comp.circuits.graph import ALL, CLASSES, stage
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


def _xy(node: str, classes: list[str], band: int, last: int) -> tuple[float, float]:
    """(x, y) of a node label: x its stage (logits at ``last``), y its head's row in its class's band."""
    name, _, cls = node.partition("@")
    if name == "logits":
        return last, (len(classes) * band - 2) / 2
    row = int(name.split("H")[1]) if re.fullmatch(r"L\d+H\d+", name) else 0
    return stage(name, 10**6), classes.index(cls or ALL) * band + row


def circuit_figure(circuit: dict) -> go.Figure:
    """Nodes by layer and position class, edges as lines whose width is the edge's effect."""
    nodes = list(circuit["nodes"])
    classes = list(CLASSES) if any("@" in n for n in nodes) else [ALL]
    names = {n.partition("@")[0] for n in nodes if n != "logits"}
    band = 1 + max([int(n.split("H")[1]) for n in names if re.fullmatch(r"L\d+H\d+", n)] + [0]) + 1
    last = max([stage(n, 10**6) for n in names] + [0]) + 1
    last += last % 2 == 0  # logits after the last MLP column, or after the last attention
    fig = go.Figure()
    scale = max([abs(e["effect"]) for e in circuit["edges"] if e.get("effect") is not None] + [1e-9])
    for e in circuit["edges"]:
        at = "" if e["cls"] == ALL else f"@{e['cls']}"
        x0, y0 = _xy(e["sender"] + at, classes, band, last)
        x1, y1 = _xy(e["receiver"].split(".")[0] + ("" if e["receiver"] == "logits" else at), classes, band, last)
        width = 1 + 7 * abs(e["effect"]) / scale if e.get("effect") is not None else 1.5
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line=dict(width=width, color="rgba(70,90,160,0.6)"),
                                 hoverinfo="text", text=f"{e['label']}: effect {e.get('effect') or 0:.3f}", showlegend=False))
    xy = [_xy(n, classes, band, last) for n in nodes]
    fig.add_trace(go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers+text", text=nodes,
                             textposition="top center", marker=dict(size=14, color="#d95f02"),
                             hovertemplate="%{text}<extra></extra>", showlegend=False))
    for i, c in enumerate(classes):
        fig.add_annotation(x=-0.9, y=i * band + (band - 2) / 2, text=c, showarrow=False, textangle=-90)
    ticks = ["embed"] + [f"{k} {layer}" for layer in range(last // 2) for k in ("attn", "MLP")][: last - 1] + ["logits"]
    fig.update_xaxes(tickvals=list(range(last + 1)), ticktext=ticks, range=[-1.2, last + 0.5])
    fig.update_yaxes(visible=False)
    c = circuit
    fig.update_layout(title=f"{c['run']}: {c['level']} circuit ({c.get('method', '')}), {c['n_nodes']} of {c['n_nodes_total']} "
                            f"nodes, {c['n_edges']} of {c['n_edges_total']} edges", template="plotly_white",
                      height=250 + 30 * band * len(classes), width=1000)
    return fig
