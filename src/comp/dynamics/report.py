"""Every snapshot of a run measured: :func:`dynamics_run` -> :class:`Dynamics`.

The run's model is loaded once (its context widened for the asked lengths where the
encoding allows), then each snapshot's weights are copied in and measured with the
:data:`comp.dynamics.measures.MEASURES` asked for. Evaluation sets are built once and
shared by all snapshots, so snapshots differ only in their weights.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from comp.catalog import N_SEQUENCES
from comp.circuits.data import analysed_task
from comp.config import EVAL_SEED
from comp.dynamics.measures import MEASURES, Context, parse_measures
from comp.dynamics.stages import FORM_THRESHOLD, Stage, find_stages
from comp.errors import CompError
from comp.io import load_tensors
from comp.model import resolve_device
from comp.provenance import recorded
from comp.runs.files import SNAPSHOT_DIR, snapshot_steps
from comp.runs.load import load_run_config, load_run_for_lengths
from comp.runs.names import resolve_run
from comp.runs.state import load_model_tensors
from comp.tasks import parse_lengths


@dataclass
class SnapshotMeasures:
    """The measures of one snapshot."""

    step: int
    values: dict = field(default_factory=dict)  # measure name -> float (or str, e.g. iteration_head; None: undefined)
    seconds: float = 0.0  # time to measure this snapshot (loading included)
    timing: dict = field(default_factory=dict)  # seconds of each measure


@dataclass
class Dynamics:
    """What ``comp dynamics`` finds (serialised with ``asdict``)."""

    run: str
    task: str
    encoding: str
    measures: list[str]
    lengths: list[int]
    train_lengths: list[int]
    n: int
    seed: int
    threshold: float
    snapshots: list[SnapshotMeasures]
    stages: list[Stage]
    seconds_per_snapshot: float
    member: str = ""  # of a multi-task run: the member task measured alone ("": every member)

    def to_dict(self) -> dict:
        return asdict(self)

    def series(self, name: str) -> list:
        return [s.values.get(name) for s in self.snapshots]

    def table(self) -> list[dict]:
        """One printable row per snapshot: the step and its scalar measures (no per-length accuracies)."""
        return [{"step": s.step, **{k: v for k, v in s.values.items() if not k.startswith("acc_L")}}
                for s in self.snapshots]


def check_run(spec: str) -> list:
    """The run's snapshots ``(step, path)``; a missing run or one without snapshots is a :class:`CompError`."""
    path = resolve_run(spec)
    found = snapshot_steps(path)
    if not found:
        raise CompError(f"run {path} has no weight snapshots ({SNAPSHOT_DIR}/); train it with --save-every log "
                        "(or a step list such as --save-every 0,50,100)")
    return found


@recorded
def dynamics_run(spec: str, measures: str = "acc,heads", lengths: str = "", n: int = N_SEQUENCES, seed: int = EVAL_SEED,
                 threshold: float = FORM_THRESHOLD, device: str = "cpu", member: str = "") -> Dynamics:
    """Measure every snapshot of run ``spec`` (``lengths``: accuracy lengths, default the training
    lengths and twice as long where the encoding allows). The run may still be training:
    only its config and snapshots are read. ``member``: of a multi-task run, measure that
    member task alone (default: every member; accuracy is then the lowest over them)."""
    names = parse_measures(measures)
    found = check_run(spec)
    cfg = load_run_config(resolve_run(spec))
    train_lengths = list(range(cfg.train.lengths.lo, cfg.train.lengths.hi + 1))
    wanted = parse_lengths(lengths) if lengths else default_lengths(spec, train_lengths)
    run = load_run_for_lengths(spec, sorted(set(wanted) | set(train_lengths)), device=device, weights=False)
    ctx = Context(analysed_task(run.task, member), wanted, train_lengths, n, seed, resolve_device(device))
    results = []
    for step, path in found:
        t0 = time.perf_counter()
        load_model_tensors(run.model, load_tensors(path, "snapshot"), str(path))
        values: dict = {}
        timing: dict = {}
        for name in names:
            t1 = time.perf_counter()
            values.update(MEASURES[name](run.model, ctx))
            timing[name] = time.perf_counter() - t1
        results.append(SnapshotMeasures(step, values, time.perf_counter() - t0, timing))
    steps = [r.step for r in results]
    series = {k: [r.values.get(k) for r in results] for k in ("iteration", "train_acc", "long_acc")
              if any(k in r.values for r in results)}
    return Dynamics(
        run=run.name, task=cfg.task.name, encoding=cfg.model.encoding, measures=names, lengths=wanted,
        train_lengths=train_lengths, n=n, seed=seed, threshold=threshold, snapshots=results,
        stages=find_stages(steps, series, threshold), seconds_per_snapshot=sum(r.seconds for r in results) / len(results),
        member=member,
    )


def default_lengths(spec: str, train_lengths: list[int]) -> list[int]:
    """The training lengths and up to twice the longest, if the encoding can widen its context; else the training lengths."""
    longer = list(range(min(train_lengths), 2 * max(train_lengths) + 1))
    try:
        load_run_for_lengths(spec, longer, weights=False)
    except CompError:
        return train_lengths
    return longer
