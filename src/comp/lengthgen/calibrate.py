"""Per-run inference-time sharpening chosen on validation lengths (``comp lengthgen --calibrate logn``).

A run trained with ``attn_scale=logn`` multiplies each head's logits by a learned
``s_h * log(n)``. A run whose iteration head is only just sharp enough at the training
lengths blurs at long ones (docs/results/lengthgen/tenseeds.md, section 4: one seed in ten).
Calibration looks at the run's own validation rows, never at a test length:

1. evaluate the run as trained (factor 1) at the validation lengths;
2. if every validation row is at 1.0 (whole CoT, teacher-forced, which equals greedy
   decoding's accuracy), keep factor 1 -- the run is left as trained;
3. otherwise evaluate every factor of ``FACTORS`` (each multiplies every ``s_h``) and keep
   the one with the highest worst validation accuracy, ties broken by the lowest mean
   validation loss (then by the smaller factor).

The choice, every factor's numbers and the reason are written (``calibration.json`` in the
study directory, ``lengthgen_calibration.json`` in the run directory) before any test length
is evaluated; the test rows are then evaluated once with the chosen factor.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from comp.errors import CompError
from comp.evaluation import evaluate_run
from comp.io import read_json, write_json

FACTORS = (1.0, 1.1, 1.25, 1.5, 2.0)  # candidate multipliers of the learned log(n) scales
CALIBRATIONS = {"logn": "multiply every learned log(n) attention scale by one factor per run"}
RUN_FILE = "lengthgen_calibration.json"


@dataclass
class Calibration:
    """One run's factor and the validation numbers that chose it."""

    run: str
    factor: float  # the chosen multiplier (1: the run as trained)
    why: str
    scores: dict[str, dict]  # factor (as text) -> {"min", "mean", "loss", "worst_length"}


def check_calibration(name: str, val_lengths: str, attn_scale: str) -> None:
    """Refuse a calibration that is unknown, has nothing to choose on, or nothing to scale."""
    if not name:
        return
    if name not in CALIBRATIONS:
        raise CompError(f"unknown --calibrate {name!r}; choose one of: {', '.join(CALIBRATIONS)}")
    if not val_lengths:
        raise CompError("--calibrate chooses on validation lengths; give them too (e.g. --val-lengths 24-63)")
    if attn_scale != "logn":
        raise CompError("--calibrate logn needs runs with a learned log(n) scale; add --set model.attn_scale=logn")


def score(rows: list[dict]) -> dict:
    """The validation summary of one factor: worst and mean whole-CoT accuracy, mean loss."""
    worst = min(rows, key=lambda r: r["acc_cot"])
    return {"min": worst["acc_cot"], "mean": statistics.fmean(r["acc_cot"] for r in rows),
            "loss": statistics.fmean(r["loss"] for r in rows), "worst_length": worst["length"]}


def choose(scores: dict[float, dict]) -> tuple[float, str]:
    """The factor the rule keeps (module docstring) and the reason, from per-factor scores."""
    base = scores[1.0]
    if base["min"] >= 1.0:
        return 1.0, "every validation row at 1.0 as trained: factor 1 (unchanged)"
    best = min(scores, key=lambda f: (-scores[f]["min"], scores[f]["loss"], f))
    s = scores[best]
    return best, (f"as trained the worst validation row is {base['min']:.4f} (length {base['worst_length']}); "
                  f"factor {best:g} has the highest worst row {s['min']:.4f}, mean loss {s['loss']:.3g} "
                  f"(as trained {base['loss']:.3g})")


def calibrate_run(run_dir: Path, val_lengths: str, n: int, seed: int, device: str, step) -> Calibration:
    """Choose ``run_dir``'s factor on ``val_lengths`` (cached in the run directory per settings)."""
    key = {"val_lengths": val_lengths, "n": n, "seed": seed, "step": step, "factors": list(FACTORS)}
    path = run_dir / RUN_FILE
    if path.exists():
        cached = read_json(path, "calibration cache")
        if cached.get("key") == key:
            return Calibration(**cached["calibration"])

    def rows(factor: float) -> list[dict]:
        return evaluate_run(str(run_dir), val_lengths, n=n, seed=seed, generate=False, device=device,
                            sharpen=factor)["rows"]

    scores = {1.0: score(rows(1.0))}
    if scores[1.0]["min"] < 1.0:
        scores.update({f: score(rows(f)) for f in FACTORS if f != 1.0})
    factor, why = choose(scores)
    result = Calibration(run_dir.name, factor, why, {f"{f:g}": s for f, s in scores.items()})
    write_json(path, {"key": key, "calibration": asdict(result)})
    return result
