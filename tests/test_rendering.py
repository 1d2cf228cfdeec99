"""The HTML reports render in a real browser with no network: headless Chromium.

Skipped only when no Chromium is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from comp.cli.main import app
from comp.views.browser import find_chromium, render
from comp.views.plots import accuracy_by_length, write_png

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium: apt-get install -y --no-install-recommends chromium (CI does) to run the browser checks",
)
runner = CliRunner()


def visible_dom(dom: str) -> str:
    """The DOM without inline scripts (the inlined bundles would match anything)."""
    return re.sub(r"<script\b.*?</script>", "", dom, flags=re.S)


def pixels(png) -> np.ndarray:
    return np.asarray(Image.open(png).convert("RGB")).astype(int)  # [h, w, 3]


def assert_drawn(png, min_colors: int = 20, min_ink: float = 0.005) -> None:
    """Not blank: enough non-white pixels in enough different colours."""
    img = pixels(png)
    ink = (img.min(-1) < 235).mean()
    colors = len(np.unique(img.reshape(-1, 3), axis=0))
    assert ink > min_ink and colors > min_colors, (ink, colors)


def test_attention_view_renders_offline(tmp_path, trained_run):
    page, png = tmp_path / "attn.html", tmp_path / "attn.png"
    res = runner.invoke(app, ["viz", "--ckpt", str(trained_run), "--input", "0110", "--out", str(page)])
    assert res.exit_code == 0, res.output
    dom = visible_dom(render(page, png, width=900, height=1000))
    n_layers, n_heads = 2, 2
    for layer in range(n_layers):
        view = re.search(rf'<div id="attention-layer-{layer}"[^>]*>(.*?)(<h2>|</body>)', dom, flags=re.S)
        assert view, f"layer {layer} view missing"
        # one thumbnail canvas per head plus the zoomed pattern, and the head names
        assert view.group(1).count("<canvas") == n_heads + 1
        assert all(f"L{layer}H{h}" in view.group(1) for h in range(n_heads))
    img = pixels(png)
    purple = ((img[..., 2] - img[..., 1]) > 40).mean()  # attention cells are shades of blue-violet
    assert purple > 0.01, purple
    assert_drawn(png)


def test_eval_plot_renders_offline(tmp_path, trained_run):
    page = tmp_path / "eval.html"
    res = runner.invoke(app, ["eval", "--ckpt", str(trained_run), "--lengths", "1-5", "--n", "16", "--no-generate",
                              "--plot", str(page)])
    assert res.exit_code == 0, res.output
    dom = visible_dom(render(page, page.with_suffix(".png"), width=900, height=600))
    assert 'class="main-svg"' in dom
    assert len(re.findall(r'class="trace scatter', dom)) == 2  # teacher-forced CoT and final answer lines
    assert_drawn(page.with_suffix(".png"))


def test_probe_heatmap_renders_offline(tmp_path, trained_run):
    page = tmp_path / "probe.html"
    res = runner.invoke(app, ["probe", "--ckpt", str(trained_run), "--target", "s_t", "--n-train", "32", "--n-test", "32",
                              "--plot", str(page)])
    assert res.exit_code == 0, res.output
    dom = visible_dom(render(page, page.with_suffix(".png"), width=900, height=600))
    assert dom.count('class="hm"') == 2  # the two heatmaps (accuracy, selectivity) drawn
    assert "test accuracy" in dom and "resid_post 1" in dom
    assert_drawn(page.with_suffix(".png"))


def test_write_png(tmp_path):
    fig = accuracy_by_length([{"task": "parity", "length": n, "acc_cot": 1 / n, "acc_answer": 0.5, "acc_generate": 1 / n}
                              for n in range(1, 9)], title="by length", train_max=4)
    out = tmp_path / "acc.png"
    write_png(fig, out, width=600, height=400, scale=1.5)
    assert Image.open(out).size == (900, 600)
    assert_drawn(out)
