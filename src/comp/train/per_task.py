"""The per-task curriculum of a mixture (``train.curriculum_per_task``, ``--curriculum-per-task``).

The plain curriculum widens one length range for the whole batch when the lowest accuracy
over every member task reaches the threshold, so the slowest member holds every other
back. Here each member task keeps its own longest length (``TrainState.member_hi``):

    every eval_every steps:  each member is evaluated on lo..its own hi (its own accuracy);
                             a member at >= curriculum_threshold widens by curriculum_step;
                             when every member trains on the full range and the lowest
                             accuracy holds target_acc for ``patience`` evaluations: stop

and each batch samples each member on its own range (:meth:`comp.tasks.mixture.Mixture.sample`
with a dict). With ``train.mix = need`` a member's share of each batch also follows its need,
set at each evaluation (``TrainState.member_share``)::

    weight = max(mix_floor, 1 - its lowest accuracy on its own lengths);  rows ~ weight

so once parity and copy are solved most rows go to the member still learning, and a solved
member that slips gets its rows back. ``TrainState.hi`` stays the longest of them (the batch width). The state is
saved in the checkpoint's JSON like every counter, so resume is exact.
``metrics.jsonl`` rows carry ``max_length_by_task`` (log rows and evaluations) and
``eval_acc_by_task`` / ``eval_min_by_task`` (evaluations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from comp.evaluation import evaluate_length
from comp.runs.state import TrainState
from comp.tasks import LengthRange, Task
from comp.tasks.base import Batch
from comp.train.schedule import count_target

if TYPE_CHECKING:  # pragma: no cover
    from comp.config import TrainConfig
    from comp.train.loop import Run


def initial_member_hi(task: Task, t: TrainConfig) -> dict[str, int]:
    """Every member's longest length at the start: ``curriculum_start`` (or the whole range)."""
    return {m.name: min(t.curriculum_start, t.lengths.hi) for m in task.components()}


def initial_member_share(task: Task, t: TrainConfig) -> dict[str, float]:
    """mix=need: every member weighs 1 before the first evaluation (an even split); {} otherwise."""
    return {m.name: 1.0 for m in task.components()} if t.mix == "need" else {}


def need_weights(lows: dict[str, float], floor: float) -> dict[str, float]:
    """Each member's weight for the next batches: ``max(floor, 1 - lowest accuracy)``."""
    return {name: max(floor, 1.0 - low) for name, low in lows.items()}


def next_batch(task: Task, gen: torch.Generator, state: TrainState, t: TrainConfig) -> Batch:
    """The next training batch: lo..hi (hi grown by the curriculum, per member task with the
    per-task curriculum), rows split by ``state.member_share`` under mix=need."""
    lengths = member_ranges(state, t, task) if state.member_hi else LengthRange(t.lengths.lo, state.hi)
    if state.member_share and len(task.components()) > 1:
        return task.sample(gen, lengths, t.batch_size, shares=state.member_share)
    return task.sample(gen, lengths, t.batch_size)


def member_ranges(state: TrainState, t: TrainConfig, task: Task) -> "dict[str, LengthRange] | LengthRange":
    """The lengths of the next batch, per member (one range for a single task)."""
    ranges = {name: LengthRange(t.lengths.lo, hi) for name, hi in state.member_hi.items()}
    return ranges if len(task.components()) > 1 else next(iter(ranges.values()))


def member_quick_eval(model, task: Task, state: TrainState, t: TrainConfig) -> dict[str, dict[int, float]]:
    """Teacher-forced whole-answer accuracy of each member on its own lengths lo..hi."""
    return {
        m.name: {
            length: evaluate_length(model, m, length, t.eval_n, t.eval_seed, generate=False).acc_cot
            for length in range(t.lengths.lo, state.member_hi[m.name] + 1)
        }
        for m in task.components()
    }


def record_member_eval(run: Run, accs: dict[str, dict[int, float]]) -> float:
    """Record one evaluation per member, then widen each member that reached the threshold on
    its own lengths, or count toward early stopping once all train on the full range.
    Returns the lowest accuracy over every member."""
    t, state = run.cfg.train, run.state
    lows = {name: min(a.values()) for name, a in accs.items()}
    low = min(lows.values())
    full = all(hi >= t.lengths.hi for hi in state.member_hi.values())  # before this evaluation widens any
    state.history.append([state.step, low])
    if state.member_share:  # mix=need: the next batches' shares
        state.member_share = need_weights(lows, t.mix_floor)
    run.metrics.write({
        "step": state.step,
        "eval_acc_by_task": {name: {str(k): v for k, v in a.items()} for name, a in accs.items()},
        "eval_min_by_task": lows,
        "eval_min": low,
        "max_length_by_task": dict(state.member_hi),
        **({"share_by_task": dict(state.member_share)} if state.member_share else {}),
    })
    run.wandb.log({"eval/min_acc": low, **{f"eval/{name}/min_acc": v for name, v in lows.items()},
                   **{f"train/{name}/max_length": hi for name, hi in state.member_hi.items()},
                   **{f"train/{name}/share": w for name, w in state.member_share.items()}}, state.step)
    for name, member_low in lows.items():
        if state.member_hi[name] < t.lengths.hi and member_low >= t.curriculum_threshold:
            state.member_hi[name] = min(t.lengths.hi, state.member_hi[name] + t.curriculum_step)
    state.hi = max(state.member_hi.values())
    if full:
        count_target(state, t, low)
    return low
