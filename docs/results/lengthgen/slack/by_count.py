"""Answer-only parity models by the number of ones in the input: what they compute past length 16.

For each run, on the fixed evaluation sets (``comp eval``'s: seed 12345, 256 sequences per
length) of every length 1-64, the model's answer (argmax at the position before it, as
teacher-forced and free generation score it) is grouped by ``k``, the number of ones in the
input. Reported per run: accuracy by ``k`` at the training lengths (1-16) and past them
(17-64), and how well one rule predicts the model past 16: "parity of ``k`` for
``k <= c``, 0 above", with ``c`` read off the training lengths only (the largest ``c`` such
that every ``k <= c`` there is at least 95% right).

    python docs/results/lengthgen/slack/by_count.py RUN_DIR [RUN_DIR ...] --out DIR   # DIR/<run>.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from slack_use import rounded  # this directory (python puts a script's directory on sys.path)

from comp.catalog import EVAL_SEED
from comp.evaluation import eval_batch
from comp.runs.load import load_run, load_run_config

TRAIN, TEST = range(1, 17), range(17, 65)
N = 256
RIGHT = 0.95  # a count is "learned" when the training lengths get it this often right


def answers_by_length(run, lengths) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """{length: (ones [n], model answer [n])} on the fixed evaluation set of each length."""
    out = {}
    for L in lengths:
        batch = eval_batch(run.task, L, N, EVAL_SEED)
        with torch.no_grad():
            logits = run.model(batch.tokens)  # [n, pos, vocab]
        q = batch.answer_pos - 1
        out[L] = (batch.tokens[:, 1 : L + 1].sum(1), logits[torch.arange(N), q].argmax(-1))
    return out


def by_count(data: dict, lengths) -> dict[int, dict]:
    """{k: {"n", "acc", "says_0"}} pooled over ``lengths``."""
    ones = torch.cat([data[L][0] for L in lengths])
    said = torch.cat([data[L][1] for L in lengths])
    return {int(k): {"n": int((ones == k).sum()), "acc": (said[ones == k] == k % 2).float().mean().item(),
                     "says_0": (said[ones == k] == 0).float().mean().item()} for k in ones.unique()}


def analyse(path: str) -> dict:
    run = load_run(path, n_ctx=run_ctx(path))
    data = answers_by_length(run, [*TRAIN, *TEST])
    train, test = by_count(data, TRAIN), by_count(data, TEST)
    c = -1
    while c + 1 in train and train[c + 1]["acc"] >= RIGHT:
        c += 1
    rule = {}
    for L in TEST:
        ones, said = data[L]
        predicted = torch.where(ones <= c, ones % 2, torch.zeros_like(ones))
        rule[L] = {"acc": (said == ones % 2).float().mean().item(), "rule_agrees": (said == predicted).float().mean().item(),
                   "rule_acc": (predicted == ones % 2).float().mean().item()}
    agree = sum(r["rule_agrees"] for r in rule.values()) / len(rule)
    return {"run": run.name, "slack": run.config.task.slack, "learned_up_to": c, "rule_agrees_17_64": agree,
            "by_count_train": train, "by_count_test": test, "by_length_test": rule}


def run_ctx(path: str) -> int:
    return load_run_config(Path(path)).task.build().seq_len(max(TEST))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="", help="directory for one JSON file per run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.runs:
        r = analyse(path)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / f"{r['run']}.json").write_text(json.dumps(rounded({"n": N, "seed": EVAL_SEED, **r})) + "\n")
        print(f"{r['run']:20s} learned counts 0..{r['learned_up_to']}, rule agrees with the model at 17-64: "
              f"{r['rule_agrees_17_64']:.3f}", flush=True)


if __name__ == "__main__":
    main()
