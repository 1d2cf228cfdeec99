"""Ranges of the numeric options, checked where the command line is parsed.

One table, :data:`RANGES`: an option named here (by its Python name, in every command that
has it) whose value is out of its range, or not a finite number, is refused by click as a
usage error, which :class:`comp.cli.main.CompGroup` prints as one ``error:`` line (exit 2).
"""

from __future__ import annotations

import math

# option name -> (lowest, highest or None, whether the lowest itself is allowed); --faithfulness is checked
# by comp.circuits.discover.check_options
RANGES: dict[str, tuple[float, float | None, bool]] = {
    **{name: (1, None, True) for name in ("n", "n_train", "n_test", "steps", "batch_size", "d_model", "n_heads",
                                           "n_layers", "n_ctx", "cpus")},
    **{name: (0, None, True) for name in ("seed", "d_mlp", "length", "at", "layer", "tail", "slack", "max_parallel",
                                           "weight_decay", "plateau", "ref_n")},
    "lr": (0.0, None, False),
    "target_acc": (0.0, 1.0, True),
    "threshold": (0.0, 1.0, True),
    "min_score": (0.0, 1.0, True),
    "budget": (0.0, 1.0, True),
}


def describe(low: float, high: float | None, closed: bool) -> str:
    """The range in words: 'at least 1', 'in (0, 1]'."""
    if high is None:
        return f"at least {low}" if closed else f"greater than {low}"
    return f"in {'[' if closed else '('}{low}, {high}]"


def check_ranges(command, click) -> None:
    """Give every option of ``command`` (and its subcommands) named in :data:`RANGES` a range check."""
    for sub in getattr(command, "commands", {}).values():
        check_ranges(sub, click)
    for param in command.params:
        if param.name in RANGES and param.type_descriptor.annotation in (int, float, int | None, float | None):
            param.callback = _checker(RANGES[param.name], param.callback, click)


def _checker(bounds, previous, click):
    low, high, closed = bounds

    def callback(ctx, param, value):
        if value is not None:
            bad = (isinstance(value, float) and not math.isfinite(value)) or value < low or (value == low and not closed)
            if bad or (high is not None and value > high):
                raise click.exceptions.BadParameter(f"{value} is not {describe(low, high, closed)}; give a value {describe(low, high, closed)}",
                                         ctx=ctx, param=param)
        return previous(ctx, param, value) if previous is not None else value

    return callback
