"""``comp eval``: accuracy by length of a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.cli.common import check_output_path, print_table, user_errors, write_outputs
from comp.evaluation import evaluate
from comp.runs.load import load_run_for_lengths
from comp.tasks import parse_lengths


def evaluate_run(ckpt: str, lengths: str, n: int = 512, seed: int = 12345, generate: bool = True, device: str = "cpu") -> dict:
    """Evaluate a run by length: ``{"run", "rows": [{"length", "acc_cot", ...}], ...}``."""
    wanted = parse_lengths(lengths)
    run = load_run_for_lengths(ckpt, wanted, device=device)
    rows = evaluate(run.model, run.task, wanted, n=n, seed=seed, generate=generate)
    return {
        "run": run.name,
        "path": str(run.path),
        "task": run.config.task.name,
        "encoding": run.config.model.encoding,
        "train_lengths": run.config.train.train_lengths,
        "n": n,
        "seed": seed,
        "rows": rows,
    }


def eval_cli(
    ckpt: str = typer.Option(..., help="Run name under runs/ or a run directory."),
    lengths: str = typer.Option("1-64", help="Lengths to evaluate, e.g. 1-64 or 1-16,32,64."),
    n: int = typer.Option(512, help="Sequences per length."),
    seed: int = typer.Option(12345, help="Seed of the evaluation sets."),
    generate: bool = typer.Option(True, "--generate/--no-generate", help="Also decode greedily (free generation)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results as JSON here."),
    plot: Path | None = typer.Option(None, help="Write an interactive accuracy-by-length chart (.html)."),
) -> None:
    """Accuracy by length: teacher-forced (whole CoT, final answer) and free generation."""
    _eval(ckpt, lengths, n, seed, generate, device, json_path, plot)


@user_errors
def _eval(ckpt, lengths, n, seed, generate, device, json_path, plot) -> None:
    check_output_path(json_path, (".json",))
    check_output_path(plot, (".html",))
    result = evaluate_run(ckpt, lengths, n, seed, generate, device)
    print_table(
        result["rows"],
        ["task", "length", "acc_generate", "acc_generate_answer", "acc_cot", "acc_answer", "loss"],
        title=f"{result['run']} ({result['encoding']}, trained on {result['train_lengths']})",
    )
    write_outputs(result, json_path)
    if plot is not None:
        from comp.plots import accuracy_by_length, write_html

        write_html(accuracy_by_length(result["rows"], title=result["run"]), plot)
