"""``comp dynamics --ckpt RUN``: measure every weight snapshot of a run, print a table, mark stages."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.catalog import DYNAMICS_MEASURES as MEASURES
from comp.catalog import FORM_THRESHOLD
from comp.cli.circuits import MEMBER
from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import CKPT_OR_POSITIONAL, DEVICE, EVAL_SEED_OPTION, JSON, POSITIONAL_RUN, one_run, sequences
from comp.errors import CompError
from comp.views.tables import print_table

PLOT_SUFFIXES = (".html", ".png")


def dynamics_cli(
    run: str = POSITIONAL_RUN,
    ckpt: str = CKPT_OR_POSITIONAL,
    measures: str = typer.Option("acc,heads", help=f"Comma-separated: {', '.join(MEASURES)}."),
    lengths: str = typer.Option("", help="Accuracy lengths, e.g. 1-64 (default: training lengths to 2x, where possible)."),
    n: int = sequences(),
    seed: int = EVAL_SEED_OPTION,
    threshold: float = typer.Option(FORM_THRESHOLD, help="Iteration score at which the head counts as formed."),
    json_out: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Write the plot: .html (offline plotly) or .png."),
    device: str = DEVICE,
    member: str = MEMBER,
) -> None:
    """Accuracy by length, head scores, probes and circuits of every snapshot (a run trained with --save-every),
    against the step."""
    _dynamics(ckpt, run, measures, lengths, n, seed, threshold, json_out, plot, device, member)


@user_errors
def _dynamics(ckpt, positional, measures, lengths, n, seed, threshold, json_out, plot, device, member) -> None:
    from comp.dynamics.report import dynamics_run

    run = one_run(ckpt, positional)
    if plot is not None and plot.suffix not in PLOT_SUFFIXES:
        raise CompError(f"--plot {plot}: write .html or .png")
    check_output_path(json_out, (".json",))
    check_output_path(plot, PLOT_SUFFIXES)
    if n < 1:
        raise CompError(f"--n must be at least 1, got {n}")
    d = dynamics_run(run, measures, lengths, n, seed, threshold, device, member)
    rows = d.table()
    on = f" on {member}" if member else ""
    print_table(rows, list(rows[0]), title=f"{d.run}{on}: {len(rows)} snapshots, {d.seconds_per_snapshot:.2f}s each")
    for s in d.stages:
        where = f"step {s.step} (after {s.after})" if s.step is not None else "not found"
        print(f"{s.name}: {where}; {s.definition}")
    write_outputs(d, json_out, run=run)
    if plot is not None:
        from comp.views.dynamics import dynamics_figure
        from comp.views.plots import write_html, write_png

        fig = dynamics_figure(d)
        (write_png if plot.suffix == ".png" else write_html)(fig, plot)
        print(f"saved {plot}")
