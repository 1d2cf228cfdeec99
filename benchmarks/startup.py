"""CLI start-up: ``comp --help``, every ``comp X --help`` and a bad argument's error, each in
a fresh interpreter, against the same interpreter importing what a command that trains needs
(torch and TransformerLens) — what every command paid at start before the imports were lazy.

Two rows: ``startup`` (the slowest help; goal <= 0.5 s) and ``startup-error`` (a bad value's
one-line error; goal <= 1 s). Each figure is the best of a few tries, all in this run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import Options, Row

HELPS = [[], ["train"], ["eval"], ["lengthgen"], ["probe"], ["viz"], ["grid"], ["grid", "run"], ["grid", "status"],
         ["collect"], ["heads"], ["ablate"], ["patch"], ["circuit"], ["circuit", "diff"]]
BAD = ["heads", "--ckpt", "x", "--n", "many"]  # typer rejects the value: exit 2 before any work
HEAVY = "import torch, transformer_lens"  # the baseline: what an eager CLI imports first


def _seconds(argv: list[str], expect: int, tries: int) -> float:
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if done.returncode != expect:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-300:]}")
    return best


def bench(opts: Options) -> list[Row]:
    tries = 1 if opts.quick else 3
    helps = HELPS[:2] if opts.quick else HELPS
    comp = [sys.executable, "-m", "comp"]
    baseline = _seconds([sys.executable, "-c", HEAVY], 0, tries)
    times = {" ".join(["comp", *a, "--help"]): _seconds([*comp, *a, "--help"], 0, tries) for a in helps}
    slowest = max(times, key=times.get)
    error = _seconds([*comp, *BAD], 2, tries)
    return [
        Row("startup", "s, slowest of comp [X] --help / importing torch+TransformerLens", times[slowest], baseline,
            times[slowest] / baseline, "<= 0.5 s", times[slowest] <= 0.5,
            note=f"{len(times)} helps, best of {tries}; slowest: {slowest}", extra={"helps": times}),
        Row("startup-error", "s, comp heads --n many (exit 2) / importing torch+TransformerLens", error, baseline,
            error / baseline, "<= 1 s", error <= 1.0, note=f"best of {tries}"),
    ]
