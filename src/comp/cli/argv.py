"""Checking command lines with the comp CLI itself, without running them.

``comp grid`` checks every run's command line (and each pack's, with its seeds) before
anything is written, so a typo in an axis fails at once, not in a hundred jobs: it hands
:func:`check_command_lines` to :func:`comp.grid.launch.launch`.
"""

from __future__ import annotations

from typer.main import get_command

from comp.cli.common import click
from comp.errors import CompError
from comp.grid.layout import RunLine


def check_command_lines(lines: list[RunLine]) -> None:
    """Parse each run's command line (and each pack's, with its seeds) with the comp CLI, without running it."""
    from comp.cli.main import app  # the root command, which imports this module's users
    from comp.cli.train import request_of
    from comp.train.multiseed import check_packable

    commands = get_command(app).commands
    packs = {x.task: [*x.pack["argv"], "--seeds", str(x.axes["seed"])] for x in lines if x.pack}
    for run, argv in [*((x.run, x.argv) for x in lines), *((f"task {t}", a) for t, a in packs.items())]:
        name, *args = argv
        if name not in commands or name == "grid":
            raise CompError(f"unknown base command {name!r}; choose one of: {', '.join(c for c in commands if c != 'grid')}")
        try:
            ctx = commands[name].make_context(f"comp {name}", list(args))
        except click.exceptions.ClickException as e:
            raise CompError(f"run {run}: comp {name} would reject its arguments: {e.format_message()}") from None
        if run.startswith("task ") and name == "train":  # a pack: its seeds train stacked
            check_packable(request_of(ctx.params).config())
