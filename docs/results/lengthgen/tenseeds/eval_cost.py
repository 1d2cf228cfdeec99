"""Seconds to evaluate one run at a long length with real greedy decoding, worst and best case.

    python docs/results/lengthgen/tenseeds/eval_cost.py --length 1024 --n 32 --json eval_cost.json

Worst case: an untrained model of the study's architecture (t5+coupling, logn) fails every
row at its first answer token, so every row is decoded in full with the key-value cache.
Best case (a model right on every row) costs only the teacher-forced pass, timed alone.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from comp.evaluation import evaluate_length
from comp.model import ModelConfig, build_model
from comp.tasks import make_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    cfg = ModelConfig(encoding="t5+coupling", t5_max_distance=16, attn_scale="logn", n_ctx=2 * args.length + 2)
    model = build_model(cfg, seed=0).eval()
    task = make_task("parity")
    t0 = time.perf_counter()
    forced = evaluate_length(model, task, args.length, args.n, generate=False)
    t1 = time.perf_counter()
    decoded = evaluate_length(model, task, args.length, args.n, generate=True)
    t2 = time.perf_counter()
    out = {"length": args.length, "n": args.n, "threads": torch.get_num_threads(),
           "teacher_forced_s": t1 - t0, "with_decoding_s": t2 - t1,
           "acc_cot": forced.acc_cot, "acc_generate": decoded.acc_generate}
    print(json.dumps(out))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
