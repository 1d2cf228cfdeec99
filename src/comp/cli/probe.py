"""``comp probe``: linear probes on the residual stream of a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.catalog import PROBE_TARGETS as TARGETS
from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import CKPT, DEVICE, JSON, data_seed, sequences
from comp.views.tables import print_table

TARGET_HELP = "What to probe for: " + "; ".join(f"{k}: {v}" for k, v in TARGETS.items()) + "."


def probe_cli(
    ckpt: str = CKPT,
    target: str = typer.Option(..., help=TARGET_HELP),
    lengths: str = typer.Option("", help="Input lengths of the probe sequences, e.g. 1-16 (default: the run's training lengths)."),
    n: int = sequences("Training sequences (over all --lengths), and as many test sequences (another seed)."),
    n_train: int | None = typer.Option(None, help="Training sequences, if not --n."),
    n_test: int | None = typer.Option(None, help="Test sequences, if not --n."),
    seed: int = data_seed("Seed of the sequences and of the control task."),
    steps: int = typer.Option(200, help="L-BFGS iterations per probe."),
    weight_decay: float = typer.Option(1e-3, help="L2 penalty on the probe weights."),
    device: str = DEVICE,
    json_path: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Write the layer x position heatmap (.html)."),
) -> None:
    """Probe accuracy and selectivity (against a control task) by layer and position class.

    Table columns: acc (test accuracy), ctrl (control-task accuracy), select (acc - ctrl),
    chance (most common label), K (label classes), n (test sites).
    """
    _probe(ckpt, target, lengths, n if n_train is None else n_train, n if n_test is None else n_test, seed, steps,
           weight_decay, device, json_path, plot)


@user_errors
def _probe(ckpt, target, lengths, n_train, n_test, seed, steps, weight_decay, device, json_path, plot) -> None:
    check_output_path(json_path, (".json",))
    check_output_path(plot, (".html",))
    from comp.probes import probe_run

    result = probe_run(ckpt, target, lengths, device, n_train=n_train, n_test=n_test, seed=seed, steps=steps,
                       weight_decay=weight_decay)
    print_table(
        result["rows"],
        ["layer", "position", "acc", "control_acc", "selectivity", "chance", "n_classes", "n_test_sites"],
        title=f"{result['run']}: probe {target} on lengths {result['lengths']}",
        headers=["layer", "pos", "acc", "ctrl", "select", "chance", "K", "n"],
    )
    write_outputs(result, json_path, run=ckpt)
    if plot is not None:
        from comp.views.plots import write_html
        from comp.views.probes import probe_heatmap

        write_html(probe_heatmap(result, title=f"{result['run']}: probe {target}"), plot)
