"""The root ``comp`` command; each command group lives in its own module."""

from __future__ import annotations

import typer

from comp.cli import circuit, circuits, evaluate, grid, lengthgen, probe, train, viz

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="comp: train tiny transformers on algorithmic tasks and find their circuits.",
)
app.command("train")(train.train_cli)
app.command("eval")(evaluate.eval_cli)
app.command("lengthgen")(lengthgen.lengthgen_cli)
app.command("probe")(probe.probe_cli)
app.command("viz")(viz.viz_cli)
app.add_typer(grid.app, name="grid")
app.command("collect")(grid.collect_cli)
app.command("heads")(circuits.heads_cli)
app.command("ablate")(circuits.ablate_cli)
app.command("patch")(circuits.patch_cli)
app.add_typer(circuit.app, name="circuit")


def main() -> None:
    app()
