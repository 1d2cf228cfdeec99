"""Cost of ``comp dynamics`` per snapshot against one plain evaluation of the same model.

A default-size parity run (2 layers, width 64, lengths 1-16) is trained for a few steps
with ``--save-every`` keeping 3 snapshots; ``comp dynamics`` with the default measures
(``acc,heads``: accuracy on lengths 1-32 and head scores on 1-16, 128 sequences each) is
timed per snapshot. The baseline is :func:`comp.evaluation.evaluate` of the same model on
the same lengths and sequences, teacher-forced (what the ``acc`` measure costs at least).
A ratio of 2 means a snapshot costs two evaluations: on a grid, the dynamics of a run
with S snapshots costs about 2*S final evaluations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Options, Row, Timer, bench_config
from comp.dynamics import dynamics_run
from comp.evaluation import evaluate
from comp.runs.load import load_run_for_lengths
from comp.train import train


def bench(opts: Options) -> list[Row]:
    d_model, lengths, n = (16, "1-3", 8) if opts.quick else (64, "1-16", 128)
    long = "1-6" if opts.quick else "1-32"
    cfg = bench_config(opts, d_model, batch_size=8, steps=2, lengths=lengths)
    cfg.train.save_every = "0,1"
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "dyn"
        train(cfg, run_dir, quiet=True)
        d = dynamics_run(str(run_dir), "acc,heads", long, n=n, device=opts.device)
        run = load_run_for_lengths(str(run_dir), [int(long.split("-")[1])], device=opts.device)
        with Timer(opts.torch_device) as t:
            evaluate(run.model, run.task, list(range(1, int(long.split("-")[1]) + 1)), n=n, generate=False)
    per = d.seconds_per_snapshot
    timing = {m: sum(s.timing[m] for s in d.snapshots) / len(d.snapshots) for m in d.measures}
    return [
        Row(
            "dynamics",
            f"seconds per snapshot (acc on {long}, heads on {lengths}, n={n}) / one evaluation on {long}",
            comp=per,
            baseline=t.seconds,
            ratio=per / t.seconds,
            note=f"{len(d.snapshots)} snapshots, d{d_model}; per measure: "
            + ", ".join(f"{m} {s:.3f}s" for m, s in timing.items()),
            extra={"per_measure_seconds": timing},
        )
    ]
