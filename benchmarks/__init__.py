"""comp's benchmarks. ``python -m benchmarks`` runs them all and prints one table.

Every row sets comp against a baseline measured in the same run, on the same machine:

- ``throughput``: training tokens/s of comp's loop / a plain PyTorch loop (same model, data);
- ``seeds``: wall time of 32 seeds trained together / one seed (:mod:`comp.train.multiseed`);
- ``solve`` and ``memory``: seconds to solve parity 1-16 with ``comp train parity``'s
  defaults, and that run's peak memory;
- ``patching``: batched activation patching / TransformerLens (``benchmarks/patching.py``).

Options: ``--device cpu|cuda``, ``--quick`` (tiny sizes: a smoke test), ``--only`` and
``--skip`` (comma-separated names), ``--compile``, ``--json PATH``. Each piece is
importable: ``from benchmarks.throughput import bench``; a benchmark is a function
``bench(opts: Options) -> list[Row]`` (:mod:`benchmarks.common`).
"""

from benchmarks.common import Options, Row
from benchmarks.suite import BENCHMARKS, run

__all__ = ["BENCHMARKS", "Options", "Row", "run"]
