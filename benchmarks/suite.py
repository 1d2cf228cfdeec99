"""The registry of benchmarks and the runner behind ``python -m benchmarks``.

A benchmark is a function ``bench(opts: Options) -> list[Row]``. The batched-patching
benchmark lives in ``benchmarks/patching.py`` (written with the circuits work): when that
module exists and defines ``bench``, the suite runs it like the others; when it does not,
its row says so. A benchmark that fails gives a row with the error instead of its figures.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable

from benchmarks import decode, discovery, dynamics, evaluate, kernels, paper, seeds, solve, startup, throughput
from benchmarks.common import Options, Row


def patching(opts: Options) -> list[Row]:
    """``benchmarks.patching.bench`` if present: batched patching against TransformerLens."""
    try:
        module = importlib.import_module("benchmarks.patching")
    except ModuleNotFoundError as e:
        if e.name != "benchmarks.patching":
            raise
        return [Row("patching", "batched activation patching / TransformerLens",
                    note="not run: benchmarks/patching.py is not in this checkout")]
    return list(module.bench(opts))


BENCHMARKS: dict[str, Callable[[Options], list[Row]]] = {
    "throughput": throughput.bench,
    "paper": paper.bench,  # against a plain PyTorch transformer of the paper's shape
    "kernels": kernels.bench,  # comp's training step against the hook path's
    "seeds": seeds.bench,
    "seeds-max": seeds.bench_max,  # the most seeds at <= 4x one seed's wall time
    "solve": solve.bench,  # also the "memory" row: peak memory of the same run
    "patching": patching,
    "discovery": discovery.bench,  # rows edge_patching, discovery_nodes, discovery_edges
    "startup": startup.bench,  # also the "startup-error" row: a bad argument's error
    "dynamics": dynamics.bench,  # cost of comp dynamics per snapshot
    "decode": decode.bench,  # key-value cached greedy decoding against the uncached loop
    "evaluate": evaluate.bench,  # teacher-forced evaluation at L=1024: the fused path against the hook path
}


def select(only: list[str], skip: list[str]) -> list[str]:
    """Benchmark names to run, in registry order; unknown names are an error."""
    unknown = sorted(set(only + skip) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"error: unknown benchmark {unknown}; choose from {', '.join(BENCHMARKS)}")
    return [n for n in BENCHMARKS if (not only or n in only) and n not in skip]


def run(opts: Options, names: list[str], progress: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Run the named benchmarks; a failure becomes a row that says what failed."""
    rows: list[Row] = []
    for name in names:
        progress(name)
        try:
            rows.extend(BENCHMARKS[name](opts))
        except Exception as e:  # one broken benchmark must not hide the others
            detail = traceback.format_exception_only(type(e), e)[-1].strip()
            rows.append(Row(name, "failed", met=False, note=detail[:300]))
    return rows
