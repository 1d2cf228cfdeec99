"""Plotly heatmaps of patching sweeps, written as self-contained HTML or as PNG."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from comp.circuits.components import Component
from comp.views.plots import write_html, write_png

FORMATS = (".html", ".png")


def write_figure(fig: go.Figure, path: "str | Path") -> None:
    """``.html``: interactive, plotly.js inlined; ``.png``: a static image (kaleido + Chromium)."""
    if Path(path).suffix.lower() == ".png":
        write_png(fig, path)
    else:
        write_html(fig, path)


def patch_heatmaps(result: dict) -> go.Figure:
    """One heatmap per sweep of a :func:`comp.circuits.patching.patch_run` result:
    rows are layers (or heads), columns positions; 1 = clean restored, 0 = corrupted."""
    labels = [f"{i}:{p}" for i, p in enumerate(result["positions"])]
    panels = [("residual stream (resid_pre)", [f"layer {layer}" for layer in range(len(result["resid_pre"]))], result["resid_pre"])]
    head_out = result["head_out"]  # [layer][pos][head]
    head_rows = [Component(layer, h).label for layer in range(len(head_out)) for h in range(len(head_out[layer][0]))]
    panels.append(("head outputs (hook_z)", head_rows,
                   [[head_out[layer][p][h] for p in range(len(labels))] for layer in range(len(head_out)) for h in range(len(head_out[layer][0]))]))
    if "mlp_out" in result:
        panels.append(("MLP outputs", [Component(layer).label for layer in range(len(result["mlp_out"]))], result["mlp_out"]))
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[p[0] for p in panels], vertical_spacing=0.16,
                        row_heights=[len(p[1]) + 1 for p in panels])
    for i, (_, rows, values) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=values, x=labels, y=rows, zmin=-1, zmax=1, zmid=0, colorscale="RdBu",
                                 colorbar=dict(title="restored"), showscale=i == 1,
                                 hovertemplate="%{y} at %{x}: %{z:.3f}<extra></extra>"), row=i, col=1)
        fig.update_yaxes(autorange="reversed", row=i, col=1)
    fig.update_xaxes(tickangle=-90, tickfont=dict(size=10))
    at = f", x{result['at']} flipped" if result.get("at") else ""
    fig.update_layout(title=f"{result['run']}: activation patching ({result['corruption']}{at}, length {result['length']})",
                      height=260 + 30 * sum(len(p[1]) + 1 for p in panels), template="plotly_white")
    return fig
