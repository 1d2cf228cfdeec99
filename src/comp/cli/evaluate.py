"""``comp eval``: accuracy by length of a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import CKPT, DEVICE, EVAL_SEED_OPTION, JSON, sequences
from comp.views.tables import print_table


def eval_cli(
    ckpt: str = CKPT,
    lengths: str = typer.Option("1-64", help="Lengths to evaluate, e.g. 1-64 or 1-16,32,64."),
    n: int = sequences(),
    seed: int = EVAL_SEED_OPTION,
    generate: bool = typer.Option(True, "--generate/--no-generate", help="Also decode greedily (free generation)."),
    device: str = DEVICE,
    json_path: Path | None = JSON,
    plot: Path | None = typer.Option(None, help="Write an interactive accuracy-by-length chart (.html)."),
) -> None:
    """Accuracy by length: teacher-forced (whole CoT, final answer) and free generation."""
    _eval(ckpt, lengths, n, seed, generate, device, json_path, plot)


@user_errors
def _eval(ckpt, lengths, n, seed, generate, device, json_path, plot) -> None:
    check_output_path(json_path, (".json",))
    check_output_path(plot, (".html",))
    from comp.evaluation import evaluate_run

    result = evaluate_run(ckpt, lengths, n, seed, generate, device)
    print_table(
        result["rows"],
        ["task", "length", "acc_generate", "acc_generate_answer", "acc_cot", "acc_answer", "loss"],
        title=f"{result['run']} ({result['encoding']}, trained on {result['train_lengths']})",
    )
    write_outputs(result, json_path, run=ckpt)
    if plot is not None:
        from comp.views.plots import accuracy_by_length, write_html

        write_html(accuracy_by_length(result["rows"], title=result["run"]), plot)
