"""The root ``comp`` command; each command group lives in its own module.

Importing this module (and so answering ``--help`` or rejecting a bad argument) imports
neither torch, TransformerLens nor plotting: each command imports the library modules it
needs inside its function, and help text reads names from :mod:`comp.catalog`.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup, TyperOption

from comp.cli import circuit, circuits, dynamics, evaluate, grid, lengthgen, probe, reuse, train, viz
from comp.cli.common import COMMAND_LINE, click
from comp.cli.ranges import check_ranges


class CompGroup(TyperGroup):
    """The root command: typer's own usage errors (bad value, unknown option, missing
    argument) come out as comp's one ``error: ...`` line with exit code 2, like a
    :class:`comp.errors.CompError`, instead of a boxed panel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        one_default_style(self)
        check_ranges(self, click)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        COMMAND_LINE[:] = list(sys.argv[1:] if args is None else args)  # recorded in every result file
        try:
            code = super().main(args, prog_name or "comp", complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `comp` or `comp grid`: the help, exit 0
            if e.message.strip():  # typer's rich help prints itself and leaves no message
                typer.echo(e.message)
            code = 0
        except click.exceptions.UsageError as e:
            where = f"; see {e.ctx.command_path} --help" if e.ctx is not None else ""
            typer.echo(f"error: {usage_message(e)}{where}", err=True)
            code = 2
        except click.exceptions.ClickException as e:
            typer.echo(f"error: {e.format_message()}", err=True)
            code = e.exit_code
        except getattr(click.exceptions, "Abort", ()):  # typer's vendored click has no Abort
            typer.echo("aborted", err=True)
            code = 1
        finally:
            COMMAND_LINE.clear()  # a library call after this command is a Python call again
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def usage_message(e: Exception) -> str:
    """One line of a click usage error (pydantic-style multi-line reasons joined)."""
    return " ".join(e.format_message().split()).rstrip(".")


def one_default_style(command) -> None:
    """Every option of ``command`` and its subcommands states its default one way, in its
    help as ``(default: X)``: typer's ``[default: X]`` is turned off, so an option whose
    default is a placeholder (0 or "" meaning "the run's") shows only its own words."""
    for sub in getattr(command, "commands", {}).values():
        one_default_style(sub)
    for param in command.params:
        if not isinstance(param, TyperOption) or param.hidden:
            continue
        param.show_default = False
        shown = _default_text(param)
        if shown is not None and "(default" not in (param.help or ""):
            param.help = f"{(param.help or '').rstrip()} (default: {shown})"


def _default_text(param) -> str | None:
    """How ``param``'s default reads in help, or None when it has none worth stating."""
    default = param.default
    if param.required or default is None or default in ("", (), []):
        return None
    if param.is_flag and getattr(param, "secondary_opts", None):  # --generate/--no-generate
        return param.opts[0] if default else param.secondary_opts[0]
    if param.is_flag:  # a plain switch is off unless given
        return None
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return str(default)


app = typer.Typer(
    cls=CompGroup,
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
app.command("dynamics")(dynamics.dynamics_cli)
app.command("crosstask")(reuse.crosstask_cli)


def main() -> None:
    app()
