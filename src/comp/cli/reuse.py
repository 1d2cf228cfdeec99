"""``comp crosstask --ckpt RUN``: cross-task patching in a multi-task run (:mod:`comp.circuits.crosstask`)."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.cli.common import check_output_path, user_errors, write_outputs
from comp.cli.options import DEVICE, EVAL_SEED_OPTION, JSON, POSITIONAL_RUN, one_run, sequences
from comp.views.tables import print_table


def crosstask_cli(
    run: str = POSITIONAL_RUN,
    ckpt: str = typer.Option("", "--ckpt", help="A multi-task run (comp train multi --tasks parity,copy,polynomial)."),
    source: str = typer.Option("", help="Task whose activations are patched in (default: every task)."),
    target: str = typer.Option("", help="Task whose sequences are run (default: every other task)."),
    length: int = typer.Option(0, help="Input length (default: the longest training length)."),
    n: int = sequences("Sequences of the target task."),
    seed: int = EVAL_SEED_OPTION,
    json_out: Path | None = JSON,
    device: str = DEVICE,
) -> None:
    """Per component: the share of the source task's behaviour it moves into the target task's run
    when its activations alone come from the source task's token (1 = all of it)."""
    _crosstask(ckpt, run, source, target, length, n, seed, json_out, device)


@user_errors
def _crosstask(ckpt, positional, source, target, length, n, seed, json_out, device) -> None:
    from comp.circuits.crosstask import cross_task_run

    run = one_run(ckpt, positional)
    check_output_path(json_out, (".json",))
    results = cross_task_run(run, source, target, length, n, seed, device)
    columns = [f"{r.source}->{r.target}" for r in results]
    rows = [{"component": c, **{col: r.moved[c] for col, r in zip(columns, results)}} for c in results[0].moved]
    print_table(rows, ["component", *columns], title=f"{run}: share of the task-token effect moved (length {results[0].length})")
    for r in results:
        print(f"{r.source}->{r.target}: the task token changes {r.changed:.0%} of the answer predictions "
              f"(effect {r.effect:.2f} logits)")
    write_outputs({"run": run, "results": [r.to_dict() for r in results]}, json_out, run=run)
