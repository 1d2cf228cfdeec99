"""``comp viz``: circuitsvis attention views of a trained run, as offline HTML."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.cli.common import check_output_path, user_errors
from comp.cli.options import CKPT, DEVICE, data_seed
from comp.io import write_text


def viz_cli(
    ckpt: str = CKPT,
    out: Path = typer.Option(..., "--html", "--out", help="Write the attention view here (.html, self-contained, works offline)."),
    input_spec: str = typer.Option("", "--input", help="Input to show, e.g. 0110 or 3,2,10 (default: a random one)."),
    length: int = typer.Option(0, help="Length of the random input (default: the longest training length)."),
    seed: int = data_seed("Seed of the random input."),
    layer: int | None = typer.Option(None, help="Only this layer (default: every layer)."),
    task: str = typer.Option("", "--member", "--task", help="Member task of a multi-task run (default: its first)."),
    device: str = DEVICE,
) -> None:
    """Attention patterns of every head (circuitsvis), labelled <task> x1 .. xL EoI s1 .. sL."""
    _viz(ckpt, out, input_spec, length, seed, layer, task, device)


@user_errors
def _viz(ckpt, out, input_spec, length, seed, layer, task, device) -> None:
    check_output_path(out, (".html",))
    from comp.views.attention import attention_html

    write_text(out, attention_html(ckpt, input_spec, length, seed, layer, task, device))
    typer.echo(f"wrote {out}", err=True)
