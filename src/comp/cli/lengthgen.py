"""``comp lengthgen``: the length-generalization study (train or reuse runs, evaluate by length, report)."""

from __future__ import annotations

from pathlib import Path

import typer

from comp.catalog import DEFAULT_PES
from comp.cli.common import check_output_dir, check_output_path, user_errors, write_outputs
from comp.cli.options import JSON, QUIET, SETS, MaxParallel, sequences, slurm_options
from comp.runs.names import parse_seeds, runs_dir
from comp.views.tables import print_table


@slurm_options
def lengthgen_cli(
    task: str = typer.Option("parity", help="Task to learn (parity, parity_nocot, copy, polynomial)."),
    pe: str = typer.Option(DEFAULT_PES, "--pe", help="Encodings to compare, comma-separated (see comp train --help)."),
    seeds: str = typer.Option("0,1,2", help="Seeds, e.g. 0,1,2 or 0-4: one run per encoding and seed."),
    train_lengths: str = typer.Option("1-16", help="Training lengths of every run."),
    test_lengths: str = typer.Option("1-128", "--lengths", "--test-lengths", help="Evaluation lengths, e.g. 1-128 or 1-16,32,64,128."),
    out: Path | None = typer.Option(None, help="Report directory; runs go to OUT/runs (default: $COMP_RUNS_DIR/lengthgen-TASK)."),
    steps: int | None = typer.Option(None, help="Training steps per run (default: comp train's)."),
    set_: list[str] = SETS,
    n: int = sequences(),
    val_lengths: str = typer.Option("", help="Validation lengths, e.g. 24-48: every run is evaluated there first, one "
                                    "encoding is chosen by --select and recorded, and only it is tested."),
    select: str = typer.Option("max-min-acc", help="Rule that chooses on --val-lengths: max-min-acc, max-mean-acc "
                               "(ties: the encoding listed first in --pe)."),
    decode: bool = typer.Option(False, "--decode/--no-decode",
                                help="Greedy-decode for acc_generate (slow) instead of the exact teacher-forced identity."),
    calibrate: str = typer.Option("", help="Per-run inference-time sharpening chosen on --val-lengths: logn (a factor "
                                  "on the learned log(n) scales, kept at 1 for a run whose validation rows are all "
                                  "right; see comp.lengthgen.calibrate). Default: none."),
    extend: int = typer.Option(0, help="Steps more for a run with a validation row below 1.0, from its final "
                               "weights, before calibration; the continued run is kept if no worse on --val-lengths "
                               "(see comp.lengthgen.extend). (default: none)"),
    restarts: int = typer.Option(0, help="New initializations (seed + 1000 k) for a run still below 1.0 on "
                                 "--val-lengths after --extend; the first attempt at 1.0, else the best, is kept "
                                 "(see comp.lengthgen.extend). (default: none)"),
    backend: str = typer.Option("inline", help="Where runs train: inline (one after another in this process), local "
                                "(worker processes, as comp grid --backend local), slurm (one array job; run the command "
                                "again once it is done); grid-local, the old name of local, still works."),
    device: str = typer.Option("auto", help="Where runs train and are evaluated: auto (cuda when present), cpu, cuda, "
                               "cuda:N."),
    max_parallel: MaxParallel = None,
    pack_seeds: bool = typer.Option(False, "--pack-seeds", help="slurm, local: train the seeds of an encoding "
                                    "together in one task (comp train --seeds)."),
    json_path: Path | None = JSON,
    quiet: bool = QUIET,
    slurm: dict | None = None,
) -> None:
    """Train (or reuse) one run per encoding and seed, evaluate by length, write a report directory."""
    _lengthgen(task, pe, seeds, train_lengths, test_lengths, out, steps, set_, n, decode, backend, json_path, quiet,
               dict(max_parallel=max_parallel, pack=pack_seeds, slurm=slurm), val_lengths, select, device, calibrate,
               extend, restarts)


@user_errors
def _lengthgen(task, pe, seeds, train_lengths, test_lengths, out, steps, set_, n, decode, backend, json_path,
               quiet, options: dict, val_lengths: str = "", select: str = "max-min-acc", device: str = "auto",
               calibrate: str = "", extend: int = 0, restarts: int = 0) -> None:
    check_output_path(json_path, (".json",))
    check_output_dir(out)
    from comp.lengthgen import Study, run_study
    from comp.lengthgen.report import multiples_rows

    study = Study(task=task, pes=pe.split(","), seeds=parse_seeds(seeds), train_lengths=train_lengths,
                  test_lengths=test_lengths, steps=steps, sets=list(set_), n=n, decode=decode,
                  val_lengths=val_lengths, select=select, device=device, calibrate=calibrate,
                  extend=extend, restarts=restarts)
    from comp.model import resolve_device
    from comp.tasks import make_task, parse_lengths
    from comp.tasks.base import check_sample_size

    check_sample_size(n, make_task(task).seq_len(max(parse_lengths(test_lengths))), resolve_device(device))  # before training
    out = out or runs_dir() / f"lengthgen-{task}"
    results = run_study(study, out, backend=backend, quiet=quiet, **options)
    if results.get("selection"):
        print(f"chosen on lengths {val_lengths}: {results['selection']['why']}")
    for name, e in results.get("extension", {}).items():
        if e["worst_after"] is not None or e.get("restarts"):
            print(f"continued {name}: {e['why']}")
    for name, c in results.get("calibration", {}).items():
        if c["factor"] != 1.0:
            print(f"calibrated {name}: factor {c['factor']:g} ({c['why']})")
    if results["rows"]:
        rows = multiples_rows(results)
        print_table(rows, list(rows[0]),
                    title=f"{task} trained on {train_lengths}: acc_generate ({'greedy decoding' if decode else 'teacher-forced identity'}), "
                          "mean ± sd [worst seed]")
    if results["pending"]:
        print(f"pending runs: {', '.join(results['pending'])}")
    write_outputs(results, json_path, config=results["study"])  # the study's settings (its meta left out)
    print(f"report in {out}: {', '.join(sorted(p.name for p in Path(out).iterdir() if p.is_file()))}")
