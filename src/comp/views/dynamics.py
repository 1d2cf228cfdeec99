"""The measures of ``comp dynamics`` against the training step, stage changes marked.

Two panels sharing the step axis (log scale; step 0 is drawn at 0.5): accuracies
(training lengths, longer lengths, probe) above, head scores (and circuit faithfulness)
below; a dotted vertical line at each stage change found.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from comp.dynamics.report import Dynamics

TOP = ("train_acc", "long_acc", "probe_x_t")
BOTTOM = ("iteration", "eoi_anchor", "prev_token", "circuit_faithfulness")


def dynamics_figure(d: Dynamics) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("accuracy", "head scores (best head) and circuit faithfulness"))
    x = [max(s.step, 0.5) for s in d.snapshots]
    for row, names in ((1, TOP), (2, BOTTOM)):
        for name in names:
            ys = d.series(name)
            if any(isinstance(v, (int, float)) for v in ys):
                fig.add_trace(go.Scatter(x=x, y=ys, mode="lines+markers", name=name), row=row, col=1)
    for stage in d.stages:
        if stage.step is not None:
            fig.add_vline(x=max(stage.step, 0.5), line_dash="dot", line_color="gray",
                          annotation_text=f"{stage.name} @ {stage.step}", annotation_position="top")
    fig.update_xaxes(type="log", title_text="training step (log; 0 drawn at 0.5)", row=2, col=1)
    fig.update_yaxes(range=[-0.02, 1.02])
    fig.update_layout(title=f"{d.run}: training dynamics ({d.task}, {d.encoding})", template="plotly_white", height=700)
    return fig
