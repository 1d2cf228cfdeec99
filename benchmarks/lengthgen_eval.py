"""Cost of evaluating one run at long lengths: teacher forcing only (what ``comp lengthgen`` does)
against greedy decoding of every failing row (``--decode``), measured in the same process.

    python benchmarks/lengthgen_eval.py [--n 256] [--lengths 32,64,128]

An untrained model fails every row, the worst case for decoding. Prints seconds per
length and the ratio; both give the same acc_generate (see comp.lengthgen.study).
"""

from __future__ import annotations

import argparse
import time

import torch

from comp.evaluation import evaluate_length
from comp.model import ModelConfig, build_model
from comp.tasks import make_task, parse_lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--lengths", default="32,64,128")
    parser.add_argument("--pe", default="rotary+coupling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build_model(ModelConfig(encoding=args.pe, n_ctx=600)).eval()
    task = make_task("parity")
    print(f"{'L':>5} {'teacher-forced s':>17} {'decode s':>9} {'ratio':>6}  acc_generate equal")
    for length in parse_lengths(args.lengths):
        t0 = time.perf_counter()
        fast = evaluate_length(model, task, length, args.n, generate=False)
        t1 = time.perf_counter()
        slow = evaluate_length(model, task, length, args.n, generate=True)
        t2 = time.perf_counter()
        print(f"{length:>5} {t1 - t0:>17.2f} {t2 - t1:>9.2f} {(t2 - t1) / (t1 - t0):>6.1f}  "
              f"{fast.acc_cot == slow.acc_generate}")


if __name__ == "__main__":
    main()
