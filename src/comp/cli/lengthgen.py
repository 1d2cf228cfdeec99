"""``comp lengthgen``: the length-generalization study (train or reuse runs, evaluate by length, report)."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.cli.common import check_output_path, print_table, user_errors, write_outputs
from comp.errors import CompError
from comp.lengthgen import BACKENDS, Study, run_study
from comp.lengthgen.report import multiples_rows
from comp.lengthgen.study import DEFAULT_PES
from comp.runs import runs_dir


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` -> ``[0, 1, 2]``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            lo, _, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise CompError(f"bad seed {part!r} in {text!r}; write seeds like 0,1,2 or 0-2") from None
    return seeds


def lengthgen_cli(
    task: str = typer.Option("parity", help="Task to learn (parity, parity_nocot, copy, polynomial)."),
    pe: str = typer.Option(DEFAULT_PES, "--pe", help="Encodings to compare, comma-separated (see comp train --help)."),
    seeds: str = typer.Option("0,1,2", help="Seeds, e.g. 0,1,2 or 0-4: one run per encoding and seed."),
    train_lengths: str = typer.Option("1-16", help="Training lengths of every run."),
    test_lengths: str = typer.Option("1-128", help="Evaluation lengths, e.g. 1-128 or 1-16,32,64,128."),
    out: Path | None = typer.Option(None, help="Report directory; runs go to OUT/runs (default: $COMP_RUNS_DIR/lengthgen-TASK)."),
    steps: int | None = typer.Option(None, help="Training steps per run (default: comp train's)."),
    set_: list[str] = typer.Option([], "--set", help="Setting for every run, e.g. --set model.d_model=32 (repeatable)."),
    n: int = typer.Option(256, help="Evaluation sequences per length."),
    decode: bool = typer.Option(False, "--decode/--no-decode",
                                help="Greedy-decode for acc_generate (slow) instead of the exact teacher-forced identity."),
    backend: str = typer.Option("local", help=f"Where runs train: {', '.join(BACKENDS)}."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write results.json here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress bars."),
) -> None:
    """Train (or reuse) one run per encoding and seed, evaluate by length, write a report directory."""
    _lengthgen(task, pe, seeds, train_lengths, test_lengths, out, steps, set_, n, decode, backend, json_path, quiet)


@user_errors
def _lengthgen(task, pe, seeds, train_lengths, test_lengths, out, steps, set_, n, decode, backend, json_path,
               quiet) -> None:
    check_output_path(json_path, (".json",))
    study = Study(task=task, pes=pe.split(","), seeds=parse_seeds(seeds), train_lengths=train_lengths,
                  test_lengths=test_lengths, steps=steps, sets=list(set_), n=n, decode=decode)
    out = out or runs_dir() / f"lengthgen-{task}"
    results = run_study(study, out, backend=backend, quiet=quiet)
    if results["rows"]:
        print_table(multiples_rows(results), list(multiples_rows(results)[0]),
                    title=f"{task} trained on {train_lengths}: free generation, mean ± sd [worst seed]")
    if results["pending"]:
        print(f"pending runs: {', '.join(results['pending'])}")
    write_outputs(results, json_path)
    print(f"report in {out}: {', '.join(sorted(p.name for p in Path(out).iterdir() if p.is_file()))}")
