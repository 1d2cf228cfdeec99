"""Train on the runs that err on validation lengths (``comp lengthgen --extend STEPS``).

A run can fit its training lengths and still not have found the read that extrapolates:
copy seed 7 of the ten-seed study is right at 1-16 but at 0.93 on lengths 24-63, and
sharpening its attention does not repair it (docs/results/lengthgen/tasks.md). The rule
acts on a run's own validation rows only, never on a test length:

1. a run whose validation rows are all at 1.0 (whole CoT, teacher-forced, which equals
   greedy decoding's accuracy) is kept as trained;
2. otherwise a child run ``<run>-ext<STEPS>`` starts from the run's final weights
   (``train.init_from``; the parent is recorded in its config) and trains ``STEPS`` more
   steps with the same settings (a fresh warmup and schedule);
3. the child replaces the run in the rest of the study (calibration, test rows) when its
   worst validation row is at least as high as the run's; otherwise the run is kept.

Each decision, with the validation numbers behind it, is written to ``OUT/extension.json``
before any test length is evaluated. Children train in the study's own process, one after
another (they are few: only flagged runs); an interrupted child is resumed.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

from comp.io import write_json
from comp.lengthgen.backends import InlineBackend
from comp.lengthgen.study import RunJob, Study, evaluate_job

EXTENSION_FILE = "extension.json"


@dataclass
class Extension:
    """One run's decision: kept as trained, or continued (and which of the two is kept)."""

    run: str  # the run as trained
    kept: str  # the run the study goes on with: ``run`` or its child
    why: str
    worst_before: float  # worst validation whole-CoT accuracy as trained
    worst_after: "float | None" = None  # the child's (None: not extended)


def child_job(job: RunJob, steps: int) -> RunJob:
    """The continuation of ``job``: same settings, ``steps`` steps from its final weights."""
    cfg = copy.deepcopy(job.config)
    cfg.train.steps = steps
    cfg.train.init_from = str(Path(job.run_dir).resolve())
    return RunJob(job.pe, job.seed, job.run_dir.parent / f"{job.name}-ext{steps}", cfg)


def _worst(rows: list[dict]) -> float:
    return min(r["acc_cot"] for r in rows)


def extend_runs(study: Study, out: Path, jobs: list[RunJob], quiet: bool = False) -> tuple[list[RunJob], dict]:
    """Apply the rule (module docstring) to finished ``jobs``; return the jobs the study goes on
    with (children in place of the runs they replace) and the decisions, also written to
    ``out/extension.json``."""
    kept, decisions = [], {}
    trainer = InlineBackend(quiet=quiet)  # trains a new child, resumes an interrupted one, reuses a finished one
    for job in jobs:
        before = _worst(evaluate_job(job, study, study.val_lengths))
        if before >= 1.0:
            kept.append(job)
            decisions[job.name] = Extension(job.name, job.name, "every validation row at 1.0: kept as trained", before)
            continue
        child = child_job(job, study.extend)
        trainer.run(study, out, [child])
        after = _worst(evaluate_job(child, study, study.val_lengths))
        better = after >= before
        kept.append(child if better else job)
        why = (f"worst validation row {before:.4f} as trained, {after:.4f} after {study.extend} more steps: "
               f"{'the continued run is kept' if better else 'the run as trained is kept'}")
        decisions[job.name] = Extension(job.name, (child if better else job).name, why, before, after)
    record = {name: asdict(d) for name, d in decisions.items()}
    write_json(Path(out) / EXTENSION_FILE, record)
    return kept, record
