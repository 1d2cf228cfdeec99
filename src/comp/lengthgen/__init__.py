"""Length generalization: train a grid of (encoding, seed) runs, evaluate by length, report.

    comp lengthgen --task parity --pe standard,rotary,coupling --seeds 0,1,2 \\
        --train-lengths 1-16 --test-lengths 1-128

:func:`run_study` checks every run first (:func:`~comp.lengthgen.study.plan`), lets a
backend train what is missing (:mod:`comp.lengthgen.backends`: a run directory with
``eval.json`` is finished and reused, an interrupted one is resumed), evaluates every
finished run by length (:func:`~comp.lengthgen.study.evaluate_job`) and writes the
report directory. With ``val_lengths``, every run is first evaluated there, one encoding
is chosen by the study's rule (:mod:`comp.lengthgen.select`), the choice is written to
``OUT/selection.json``, and only the chosen encoding's runs are evaluated at the test
lengths (:mod:`comp.lengthgen.report`). With ``calibrate="logn"``, each run then gets its own
inference-time factor on its learned ``log n`` scales, chosen on its validation rows
(:mod:`comp.lengthgen.calibrate`, ``OUT/calibration.json``), and its test rows use it.
With ``extend=STEPS`` (before calibration), a run with a validation row below 1.0 first
trains ``STEPS`` more steps from its final weights (:mod:`comp.lengthgen.extend`,
``OUT/extension.json``), and the continued run takes its place if it is no worse there; with
``restarts=K``, a run still wrong there is trained again from up to K new initializations.
Runs live in ``OUT/runs/``. With
``backend="slurm"`` the study's directory is also a :mod:`comp.grid` grid: the runs train
as one Slurm array and a second call, once they are done, evaluates and reports.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from comp.config import environment
from comp.io import write_json
from comp.lengthgen.backends import BACKENDS, RENAMED, get_backend
from comp.lengthgen.calibrate import calibrate_run
from comp.lengthgen.extend import extend_runs
from comp.lengthgen.report import write_report
from comp.lengthgen.select import RULES, select
from comp.lengthgen.study import Study, evaluate_job, plan
from comp.provenance import COMMAND_LINE, KEY, provenance, python_call
from comp.runs.files import read_eval
from comp.tasks import parse_lengths


def run_study(study: Study, out: "str | Path", backend: str = "inline", quiet: bool = False, **options) -> dict:
    """Train (through ``backend``, with its ``options``: ``max_parallel``, ``slurm``, ``pack``),
    evaluate the finished runs and report into ``out``. Returns the results.json content."""
    out = Path(out)
    runner = get_backend(backend, quiet=quiet, **options)
    backend = RENAMED.get(backend, backend)
    jobs = plan(study, out)
    pending = {j.name for j in runner.run(study, out, jobs)}
    done = [job for job in jobs if job.name not in pending]
    pes = list(dict.fromkeys(j.pe for j in jobs))  # canonical names, in the order asked
    if study.val_lengths and pending:  # a choice among some of the candidates is no choice: wait for all
        done = []
    extra = {}
    if study.val_lengths and done:
        val_rows = [row for job in done for row in evaluate_job(job, study, study.val_lengths)]
        chosen = select(val_rows, pes, parse_lengths(study.val_lengths), study.select)
        write_json(out / "selection.json", asdict(chosen))  # on disk before any test length is evaluated
        done = [job for job in done if job.pe == chosen.chosen]
        extra = {"selection": asdict(chosen), "val_rows": val_rows}
    if (study.extend or study.restarts) and done:  # per run, on its validation rows; on disk before any test length is evaluated
        done, extra["extension"] = extend_runs(study, out, done, quiet=quiet)
    factors = {}
    if study.calibrate and done:  # per run, on its validation rows; on disk before any test length is evaluated
        calibrations = {job.name: calibrate_run(job.run_dir, study.val_lengths, study.n, study.eval_seed,
                                                study.device, read_eval(job.run_dir).get("step")) for job in done}
        factors = {name: c.factor for name, c in calibrations.items()}
        extra["calibration"] = {name: asdict(c) for name, c in calibrations.items()}
        write_json(out / "calibration.json", extra["calibration"])
    rows = [row for job in done for row in evaluate_job(job, study, sharpen=factors.get(job.name, 1.0))]
    results = {"study": {**asdict(study), "pes": pes, "backend": backend, "meta": environment()},
               "pending": sorted(pending), **extra, "rows": rows}
    results[KEY] = provenance(COMMAND_LINE, results["study"], python_call(run_study, (study, out, backend), options))
    write_report(out, results)
    return results


__all__ = ["BACKENDS", "RULES", "Study", "run_study"]
