"""A discovered circuit drawn with plotly: nodes by layer (columns: embed, attention and MLP
of each layer, logits) and position class (bands of rows), edge width by effect."""

from __future__ import annotations

import re

import plotly.graph_objects as go

from comp.circuits.graph import ALL, CLASSES, stage


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
