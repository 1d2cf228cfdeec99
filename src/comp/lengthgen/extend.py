"""Train on the runs that err on validation lengths (``comp lengthgen --extend STEPS --restarts K``).

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

With ``--restarts K``, a run still below 1.0 on validation after step 3 (fresh copy seed 12
of the copy study fits 1-16 without an iteration head, and 2,000 more steps do not grow one)
is trained again from a new initialization:

4. attempt ``k`` (1..K) is a run ``<run>-restart<k>`` with the same settings and seed
   ``seed + 1000 k`` (new initial weights and data stream), continued by steps 2-3 when its
   own validation rows ask for it; attempts stop at the first one at 1.0 on every
   validation row, which is kept; if none is, the attempt with the highest worst validation
   row is kept (ties: the earliest). The study's rows keep the seed they were asked for; the
   record names the run behind them.

Each decision, with the validation numbers behind it, is written to ``OUT/extension.json``
before any test length is evaluated. Children train in the study's own process, one after
another (they are few: only flagged runs); an interrupted child is resumed.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

from comp.io import write_json
from comp.lengthgen.backends import InlineBackend
from comp.lengthgen.study import RunJob, Study, evaluate_job

EXTENSION_FILE = "extension.json"
RESTART_SEED = 1000  # attempt k of seed s trains with seed s + RESTART_SEED * k


@dataclass
class Extension:
    """One run's decision: kept as trained, or continued (and which of the two is kept)."""

    run: str  # the run as trained
    kept: str  # the run the study goes on with: ``run`` or its child
    why: str
    worst_before: float  # worst validation whole-CoT accuracy as trained
    worst_after: "float | None" = None  # the child's (None: not extended)
    restarts: list[dict] = field(default_factory=list)  # attempts from new initializations: run, kept, worst


def child_job(job: RunJob, steps: int) -> RunJob:
    """The continuation of ``job``: same settings, ``steps`` steps from its final weights."""
    cfg = copy.deepcopy(job.config)
    cfg.train.steps = steps
    cfg.train.init_from = str(Path(job.run_dir).resolve())
    return RunJob(job.pe, job.seed, job.run_dir.parent / f"{job.name}-ext{steps}", cfg)


def restart_job(job: RunJob, k: int) -> RunJob:
    """Attempt ``k`` of ``job`` from a new initialization: same settings, seed ``seed + RESTART_SEED * k``."""
    cfg = copy.deepcopy(job.config)
    cfg.train.seed = job.seed + RESTART_SEED * k
    return RunJob(job.pe, job.seed, job.run_dir.parent / f"{job.name}-restart{k}", cfg)


def _worst(rows: list[dict]) -> float:
    return min(r["acc_cot"] for r in rows)


def _continue(study: Study, out: Path, job: RunJob, trainer: InlineBackend) -> tuple[RunJob, Extension]:
    """Steps 1-3 for one run: kept as trained, or continued (and which of the two is kept)."""
    before = _worst(evaluate_job(job, study, study.val_lengths))
    if before >= 1.0 or not study.extend:
        why = "every validation row at 1.0: kept as trained" if before >= 1.0 else "not continued (no --extend)"
        return job, Extension(job.name, job.name, why, before)
    child = child_job(job, study.extend)
    trainer.run(study, out, [child])
    after = _worst(evaluate_job(child, study, study.val_lengths))
    better = after >= before
    why = (f"worst validation row {before:.4f} as trained, {after:.4f} after {study.extend} more steps: "
           f"{'the continued run is kept' if better else 'the run as trained is kept'}")
    return (child if better else job), Extension(job.name, (child if better else job).name, why, before, after)


def _worst_kept(e: Extension) -> float:
    return e.worst_before if e.kept == e.run else e.worst_after


def _decide(study: Study, out: Path, job: RunJob, trainer: InlineBackend) -> tuple[RunJob, Extension]:
    """Steps 1-4 for one run: the run the study goes on with and the record of why."""
    kept, first = _continue(study, out, job, trainer)
    best, best_worst = kept, _worst_kept(first)
    for k in range(1, study.restarts + 1):
        if best_worst >= 1.0:
            break
        fresh = restart_job(job, k)
        trainer.run(study, out, [fresh])  # trains it, or resumes / reuses it on a rerun
        attempt, record = _continue(study, out, fresh, trainer)
        worst = _worst_kept(record)
        first.restarts.append({"run": record.run, "kept": record.kept, "worst": worst, "why": record.why})
        if worst > best_worst:
            best, best_worst = attempt, worst
    if first.restarts:
        first.why += (f"; {len(first.restarts)} restart(s) from new initializations: {best.name} is kept "
                      f"(worst validation row {best_worst:.4f})")
        first.kept = best.name
    return best, first


def extend_runs(study: Study, out: Path, jobs: list[RunJob], quiet: bool = False) -> tuple[list[RunJob], dict]:
    """Apply the rule (module docstring) to finished ``jobs``; return the jobs the study goes on
    with (children or restarts in place of the runs they replace) and the decisions, also
    written to ``out/extension.json``."""
    kept, decisions = [], {}
    trainer = InlineBackend(quiet=quiet)  # trains a new child, resumes an interrupted one, reuses a finished one
    for job in jobs:
        chosen, decisions[job.name] = _decide(study, out, job, trainer)
        kept.append(chosen)
    record = {name: asdict(d) for name, d in decisions.items()}
    write_json(Path(out) / EXTENSION_FILE, record)
    return kept, record
