"""The probe heatmap: layer x position class, test accuracy and selectivity side by side."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _grid(result: dict, key: str) -> list[list[float | None]]:
    """[layer][position class] values of one metric (None where undefined)."""
    cell = {(r["layer"], r["position"]): r[key] for r in result["rows"]}
    return [[cell[layer, pos] for pos in result["positions"]] for layer in result["layers"]]


def _text(grid: list[list[float | None]]) -> list[list[str]]:
    return [["" if v is None else f"{v:.2f}" for v in row] for row in grid]


def probe_heatmap(result: dict, title: str = "") -> go.Figure:
    """Heatmaps of test accuracy (left) and selectivity (right), embeddings at the bottom."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy", "selectivity (accuracy - control)"),
                        shared_yaxes=True, horizontal_spacing=0.15)
    for col, key, scale, lo, hi in ((1, "acc", "Viridis", 0.0, 1.0), (2, "selectivity", "RdBu", -1.0, 1.0)):
        grid = _grid(result, key)
        fig.add_trace(
            go.Heatmap(
                z=grid, x=result["positions"], y=result["layers"], zmin=lo, zmax=hi, colorscale=scale,
                text=_text(grid), texttemplate="%{text}", hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>",
                colorbar={"x": 0.44 if col == 1 else 1.01, "len": 0.9, "thickness": 15},
            ),
            row=1, col=col,
        )
    fig.update_xaxes(title_text="position class")
    fig.update_yaxes(title_text="residual stream", col=1)
    fig.update_layout(
        title=title or f"probe: {result['target']} ({result['description']})",
        template="plotly_white", width=900, height=180 + 60 * len(result["layers"]),
    )
    return fig
