"""Plotly figures of comp results, written as self-contained offline HTML (and PNG)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from comp.errors import CompError
from comp.io import write_bytes, write_text

METRICS = {"acc_generate": "free generation (whole CoT)", "acc_cot": "teacher-forced (whole CoT)", "acc_answer": "final answer"}


def accuracy_by_length(rows: list[dict], title: str = "", train_max: "int | None" = None) -> go.Figure:
    """Accuracy against length, one line per metric (and per task in a mixture)."""
    fig = go.Figure()
    tasks = sorted({r.get("task", "") for r in rows})
    for task in tasks:
        sub = [r for r in rows if r.get("task", "") == task]
        for key, label in METRICS.items():
            if sub and sub[0].get(key) is not None:
                name = f"{task}: {label}" if len(tasks) > 1 else label
                # free generation often equals teacher forcing exactly: draw it wide and dashed so both show
                style = dict(line=dict(width=6, dash="dot")) if key == "acc_generate" else {}
                fig.add_trace(go.Scatter(x=[r["length"] for r in sub], y=[r[key] for r in sub], mode="lines+markers",
                                         name=name, **style))
    if train_max:
        fig.add_vrect(x0=0.5, x1=train_max + 0.5, fillcolor="gray", opacity=0.12, line_width=0, annotation_text="train")
    fig.update_layout(title=title, xaxis_title="input length", yaxis_title="accuracy", yaxis_range=[-0.02, 1.02], template="plotly_white")
    return fig


def write_html(fig: go.Figure, path: "str | Path") -> None:
    """Self-contained HTML: the plotly.js bundle is inlined, nothing loads from a CDN."""
    write_text(Path(path), fig.to_html(include_plotlyjs=True, full_html=True))


def write_png(fig: go.Figure, path: "str | Path", width: int = 900, height: int = 500, scale: float = 2.0) -> None:
    """A static PNG of ``fig`` (for the README), drawn by kaleido in a local Chrome/Chromium.

    kaleido drives a headless Chrome; it is pointed at the system's Chromium
    (``$BROWSER_PATH``, else ``chromium`` on the PATH: Debian's ``chromium`` package).
    """
    import os

    from comp.views.browser import chromium

    os.environ.setdefault("BROWSER_PATH", chromium())
    try:
        data = fig.to_image(format="png", width=width, height=height, scale=scale)
    except Exception as e:  # kaleido missing, or its browser failed: one clear line either way
        raise CompError(f"PNG export failed ({str(e).splitlines()[0]}); pip install 'kaleido>=1' and check Chromium") from None
    write_bytes(Path(path), data)
