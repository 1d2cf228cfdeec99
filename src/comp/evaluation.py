"""Accuracy by length: teacher-forced and free generation, on fixed evaluation sets.

For each length, ``n`` sequences are drawn from a generator seeded by
``(eval seed, task token, length)``: the same sequences whichever other lengths are
evaluated. Three accuracies per length (per-sequence exact match):

- ``acc_cot``: teacher-forced, every answer token right (the whole chain of thought);
- ``acc_answer``: teacher-forced, the final answer token right;
- ``acc_generate``: greedy decoding of the whole answer region from the prompt, all right;
- ``acc_generate_answer``: the final token of that greedy decoding right.

:func:`evaluate_run` does this for a saved run (``comp eval``).

Greedy decoding reproduces the targets exactly up to a row's first teacher-forced error,
so only rows with an error are decoded, from that error on, with a key-value cache
(:func:`comp.decoding.decode_after_errors`): the result is real greedy decoding.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from comp.catalog import N_SEQUENCES
from comp.config import EVAL_SEED
from comp.decoding import decode_after_errors
from comp.model.attention_scale import sharpen as sharpen_scales
from comp.model.fused import fused_everywhere, fused_training
from comp.provenance import recorded
from comp.resources import check_rows, chunk_size
from comp.runs.load import load_run_for_lengths
from comp.tasks import Batch, Task, parse_lengths, score

ATTN_BUDGET = 2**24  # attention-score elements per forward (64 MB in float32): bounds memory at long lengths


def eval_generator(seed: int, task_token: int, length: int, device: "str | torch.device" = "cpu") -> torch.Generator:
    """The generator of one evaluation set: fixed by (seed, task, length)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + task_token * 10_007 + length)


def eval_batch(task: Task, length: int, n: int, seed: int, device: "str | torch.device" = "cpu") -> Batch:
    """The fixed evaluation set of ``n`` sequences of one length (drawn on the CPU)."""
    return task.sample(eval_generator(seed, task.token, length), length, n).to(device)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predictions(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos] prediction for each token (argmax at the previous position); col 0 copies tokens."""
    return torch.cat([tokens[:, :1], logits[:, :-1].argmax(-1)], dim=1)


def masked_loss(logits: torch.Tensor, batch: Batch, per_row: bool = False) -> torch.Tensor:
    """Cross-entropy on the answer region only (mean over answer tokens, or per row)."""
    return answer_loss(logits, batch.tokens, batch.loss_mask, per_row)


def answer_loss(
    logits: torch.Tensor, tokens: torch.Tensor, loss_mask: torch.Tensor, per_row: bool = False
) -> torch.Tensor:
    """:func:`masked_loss` on plain tensors (what a ``vmap`` over seeds passes)."""
    logp = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none"
    ).view(tokens.shape[0], -1)  # [batch, pos-1]
    mask = loss_mask[:, 1:].float()
    if per_row:
        return (logp * mask).sum(1) / mask.sum(1).clamp_min(1)
    return (logp * mask).sum() / mask.sum().clamp_min(1)


@dataclass
class LengthResult:
    task: str
    length: int
    n: int
    acc_cot: float
    acc_answer: float
    acc_generate: float | None
    acc_generate_answer: float | None
    loss: float

    def as_row(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def evaluate_length(
    model, task: Task, length: int, n: int = 512, seed: int = EVAL_SEED, generate: bool = True, batch_size: int = 512
) -> LengthResult:
    """Accuracies of ``model`` on the fixed evaluation set of one task and length."""
    device = next(model.parameters()).device
    width = task.seq_len(length)
    what = f"evaluating {task.name} at length {length}"
    fit = chunk_size(model.cfg, width, n, device, what=what, lower="evaluate shorter --lengths")  # rows per pass
    check_rows(n, width, device, what, "lower --n")
    full = eval_batch(task, length, n, seed, device)
    sums = {"cot": 0.0, "answer": 0.0, "gen": 0.0, "gen_answer": 0.0, "loss": 0.0}
    preds = []  # [batch, pos] teacher-forced predictions of each chunk
    was_training = model.training
    model.eval()
    try:
        with fused_training(model, inference=True):  # SDPA where no hook looks: no patterns to bound the batch
            patterns = ATTN_BUDGET // (model.cfg.n_heads * width * width)  # rows whose attention patterns fit
            if fused_everywhere(model):  # rows whose activations fit the same budget
                patterns = max(patterns, ATTN_BUDGET // (width * max(model.cfg.d_mlp or 0, 4 * model.cfg.d_model)))
            batch_size = max(1, min(batch_size, fit, patterns))
            for lo in range(0, n, batch_size):
                batch = full.select(slice(lo, lo + batch_size))
                with autocast(device):
                    logits = model(batch.tokens)
                preds.append(predictions(logits, batch.tokens))
                s = score(batch, preds[-1])
                sums["cot"] += s["cot"].sum().item()
                sums["answer"] += s["answer"].sum().item()
                sums["loss"] += masked_loss(logits, batch, per_row=True).sum().item()
        if generate:  # the whole set at once: the decoder chunks rows by its own memory budget
            with autocast(device):
                decoded = decode_after_errors(model, full, torch.cat(preds))  # [n, pos]
            right = decoded == full.tokens
            sums["gen"] = (right | ~full.loss_mask).all(1).sum().item()
            sums["gen_answer"] = right.gather(1, full.answer_pos[:, None]).sum().item()
    finally:
        model.train(was_training)
    return LengthResult(
        task=task.name,
        length=length,
        n=n,
        acc_cot=sums["cot"] / n,
        acc_answer=sums["answer"] / n,
        acc_generate=sums["gen"] / n if generate else None,
        acc_generate_answer=sums["gen_answer"] / n if generate else None,
        loss=sums["loss"] / n,
    )


def evaluate(
    model, task: Task, lengths: list[int], n: int = 512, seed: int = EVAL_SEED, generate: bool = True,
    batch_size: int = 512
) -> list[dict]:
    """Rows ``{"task", "length", "n", "acc_cot", "acc_answer", "acc_generate", ...}``,
    one per (member task, length)."""
    return [
        evaluate_length(model, member, length, n, seed, generate, batch_size).as_row()
        for member in task.components()
        for length in lengths
    ]


@recorded
def evaluate_run(ckpt: str, lengths: str, n: int = N_SEQUENCES, seed: int = EVAL_SEED, generate: bool = True,
                 device: str = "cpu", sharpen: float = 1.0) -> dict:
    """Evaluate a run by length: ``{"run", "rows": [{"length", "acc_cot", ...}], ...}``. ``sharpen``
    multiplies the run's learned ``log n`` attention scales at inference (1: the run as trained)."""
    wanted = parse_lengths(lengths)
    run = load_run_for_lengths(ckpt, wanted, device=device)
    sharpen_scales(run.model, sharpen)
    rows = evaluate(run.model, run.task, wanted, n=n, seed=seed, generate=generate)
    return {
        "run": run.name,
        "path": str(run.path),
        "task": run.config.task.name,
        "encoding": run.config.model.encoding,
        "train_lengths": run.config.train.train_lengths,
        "n": n,
        "seed": seed,
        "sharpen": sharpen,
        "rows": rows,
    }
