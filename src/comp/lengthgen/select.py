"""Choosing a setting on held-out validation lengths, before any test length is evaluated.

A study that compares settings (its encodings, or several studies' settings) and then
reports the best one at the test lengths has chosen on the test lengths. With a
validation range (``--val-lengths 24-48``, lengths between the training range and the
test lengths of interest) and a rule (``--select max-min-acc``), the choice is made on
the validation rows alone and recorded (:class:`Selection`: the rule, every candidate's
numbers, the ranking, the reason) before the test lengths are evaluated once, for the
chosen setting only.

Rules (``RULES``) score a candidate from its rows at the validation lengths, over every
seed and length, on free generation (``acc_generate``):

- ``max-min-acc``: the worst (seed, length) accuracy, higher is better; ties broken by the
  mean, then by the candidates' given order (the first listed wins);
- ``max-mean-acc``: the mean, ties broken by the worst, then by order.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from comp.errors import CompError

METRIC = "acc_generate"


def _min_first(s: dict) -> tuple[float, float]:
    return (s["min"], s["mean"])


def _mean_first(s: dict) -> tuple[float, float]:
    return (s["mean"], s["min"])


RULES: dict[str, tuple[Callable[[dict], tuple], str]] = {
    "max-min-acc": (_min_first, "highest worst-case accuracy over seeds and validation lengths, then highest mean"),
    "max-mean-acc": (_mean_first, "highest mean accuracy over seeds and validation lengths, then highest worst case"),
}


@dataclass
class Selection:
    """Which candidate was chosen on the validation lengths, on what numbers, and why. Saved in results.json."""

    val_lengths: list[int]  # the validation lengths
    rule: str  # a key of RULES
    metric: str  # the accuracy scored
    scores: dict[str, dict]  # candidate -> {"min", "mean", "worst": [seed, length], "rows"}
    ranking: list[str]  # candidates, best first
    chosen: str  # ranking[0]
    why: str  # the rule and the numbers that decided it


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise CompError(f"unknown selection rule {rule!r}; choose one of: {', '.join(RULES)}")


def select(rows: list[dict], candidates: list[str], val_lengths: list[int], rule: str = "max-min-acc",
           key: str = "pe") -> Selection:
    """Choose among ``candidates`` (values of ``row[key]``, in order of preference for ties) by
    ``rule`` on their rows at ``val_lengths``. Every candidate needs a row at every validation length."""
    check_rule(rule)
    score_of, text = RULES[rule]
    scores = {}
    for c in candidates:
        mine = [r for r in rows if r[key] == c and r["length"] in val_lengths]
        seen = {r["length"] for r in mine}
        if not mine or seen != set(val_lengths):
            raise CompError(f"candidate {c} has no rows at validation lengths {sorted(set(val_lengths) - seen)}; "
                            "evaluate them first")
        worst = min(mine, key=lambda r: r[METRIC])
        scores[c] = {"min": worst[METRIC], "mean": statistics.fmean(r[METRIC] for r in mine),
                     "worst": [worst.get("seed"), worst["length"]], "rows": len(mine)}
    ranking = sorted(candidates, key=lambda c: tuple(-v for v in score_of(scores[c])))  # stable: order breaks ties
    best = ranking[0]
    why = f"{rule}: {text}; {best} has min {scores[best]['min']:.4f}, mean {scores[best]['mean']:.4f}"
    if len(ranking) > 1:
        runner = ranking[1]
        tie = score_of(scores[runner]) == score_of(scores[best])
        why += (f"; next {runner} (min {scores[runner]['min']:.4f}, mean {scores[runner]['mean']:.4f})"
                + (", a tie broken by the order of the candidates" if tie else ""))
    return Selection(sorted(val_lengths), rule, METRIC, scores, ranking, best, why)
