"""Multi-seed training: independent runs of one config, trained together in one process.

    comp train parity --seeds 0-31

Every seed is a whole run (:class:`comp.train.loop.Run`, built by the single-run
:func:`~comp.train.loop.open_run`): its own initial weights, data stream (a
``torch.Generator`` seeded like the single-seed loop's), AdamW state, run directory
``<task>-<pe>-s<seed>``, ``metrics.jsonl``, checkpoints and ``eval.json``, the same
files ``comp train`` writes and ``comp train --resume`` continues. Each step draws one
batch per seed from its own stream, stacks them ``[seeds, batch, pos]`` and runs every
model at once (:class:`comp.train.stack.SeedStack`: one vmapped forward and backward,
per-seed gradient clipping, one AdamW step). A seed ends as it would have alone, to
float tolerance on the same device (batched kernels sum in another order).

Early stopping: a seed that reaches its target accuracy (or its last step) finishes at
that step exactly as alone (final checkpoint, weights, evaluation) and leaves the stack;
the others train on, and the group ends when its last seed finishes.

Preemption and resume: ``should_stop()`` makes every active seed checkpoint. Resuming
restores each seed from its own checkpoint; seeds found at different steps (a kill
between two seeds' checkpoints) are trained as separate stacks, one after another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from itertools import groupby
from pathlib import Path

import torch
from torch.func import vmap

from comp.config import RunConfig
from comp.errors import CompError
from comp.evaluation import autocast, eval_batch, predictions
from comp.model import CompTransformer, resolve_device
from comp.model.attention_scale import draw_jitter
from comp.runs.files import run_status
from comp.runs.load import resume_config
from comp.runs.lock import locked
from comp.runs.state import write_failure
from comp.tasks import Batch, Task, cat_batches, score
from comp.train.loop import (
    Run,
    TrainResult,
    finish_run,
    log_window,
    open_run,
    record_eval,
)
from comp.train.per_task import next_batch, record_member_eval
from comp.train.reporting import ProgressBar, Window
from comp.train.schedule import lr_at
from comp.train.stack import SeedStack

CPU_CHUNK = 8  # seeds per forward/backward on a CPU: larger stacks spill out of cache and run slower per seed


def with_seed(cfg: RunConfig, seed: int) -> RunConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))


def resume_seeds(run_dirs: Sequence[Path], steps: "int | None" = None) -> tuple[RunConfig, list[int]]:
    """The shared config and the seeds of existing runs; they must differ in seed only."""
    cfgs = [resume_config(d, steps) for d in run_dirs]
    base = cfgs[0]
    for d, c in zip(run_dirs, cfgs):
        if with_seed(c, base.train.seed).to_dict() != base.to_dict():
            raise CompError(f"run {d} has other settings than {run_dirs[0]} (not only the seed); resume it on its own")
    return base, [c.train.seed for c in cfgs]


def stack_batches(batches: list[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and loss masks of one batch per seed, right-padded to one width: ``[seeds, batch, pos]``."""
    joined = cat_batches(batches)
    shape = (len(batches), len(batches[0]), joined.tokens.shape[1])
    return joined.tokens.view(shape), joined.loss_mask.view(shape)


def sample_position_ids(template: CompTransformer, batches: list[Batch], runs: Sequence[Run]) -> "torch.Tensor | None":
    """Each seed's random position ids ``[seeds, batch, pos]``, drawn from its own data stream
    right after its batch, as :meth:`CompTransformer.sampled_positions` draws them in the
    single-seed loop (``None`` when the encoding draws none). Padding columns get id 0."""
    if not (template.training and template.encoding.random):
        return None
    width = max(b.tokens.shape[1] for b in batches)
    ids = [template.position_ids(b.tokens, r.gen) for b, r in zip(batches, runs)]  # [batch, pos] each
    return torch.stack([torch.nn.functional.pad(i, (0, width - i.shape[1])) for i in ids])


@torch.no_grad()
def stacked_quick_eval(stack: SeedStack, task: Task, runs: Sequence[Run]) -> list[dict[int, float]]:
    """:func:`comp.train.loop.quick_eval` of every seed of the stack, each over its own
    curriculum lengths, with one forward per (length, member task) for all seeds."""
    t = runs[0].cfg.train
    lengths = range(t.lengths.lo, max(r.state.hi for r in runs) + 1)
    counts = stacked_counts(stack, task, lengths, t)  # [lengths, members, seeds]
    return [
        {length: min(c[i] for c in counts[k]) / t.eval_n for k, length in enumerate(lengths) if length <= r.state.hi}
        for i, r in enumerate(runs)
    ]


@torch.no_grad()
def stacked_member_eval(stack: SeedStack, task: Task, runs: Sequence[Run]) -> list[dict[str, dict[int, float]]]:
    """:func:`comp.train.per_task.member_quick_eval` of every seed of the stack: each member
    task over that seed's own lengths for it."""
    t = runs[0].cfg.train
    lengths = range(t.lengths.lo, max(r.state.hi for r in runs) + 1)
    counts = stacked_counts(stack, task, lengths, t)  # [lengths, members, seeds]
    names = [m.name for m in task.components()]
    return [
        {name: {length: counts[k][j][i] / t.eval_n for k, length in enumerate(lengths) if length <= r.state.member_hi[name]}
         for j, name in enumerate(names)}
        for i, r in enumerate(runs)
    ]


def stacked_counts(stack: SeedStack, task: Task, lengths: range, t) -> list:
    """Sequences whose whole answer is right, ``[lengths, members, seeds]`` (nested lists: one host sync)."""
    device = next(iter(stack.params.values())).device
    hits = []  # per length: [members, seeds] answers all right
    was_training = stack.template.training
    stack.template.eval()  # evaluation ids (fixed, for random encodings), as evaluate_length uses
    for length in lengths:
        per_member = []
        for member in task.components():
            batch = eval_batch(member, length, t.eval_n, t.eval_seed, device)
            with autocast(device):
                logits = stack.logits(batch.tokens)  # [seeds, n, pos, d_vocab]
            cot = vmap(lambda lg, b=batch: score(b, predictions(lg, b.tokens))["cot"])(logits)  # [seeds, n]
            per_member.append(cot.sum(1))
        hits.append(torch.stack(per_member))
    stack.template.train(was_training)
    return torch.stack(hits).tolist()  # [lengths, members, seeds]: the one host sync


def check_packable(cfg: RunConfig) -> None:
    """The one rule on what seeds trained together (``--seeds``, ``--pack-seeds``, ``pack: seed``)
    support, checked before anything runs. Every model setting is packable (attention jitter
    draws each seed's factors from that seed's own stream, :func:`sample_jitter`); frozen
    parameters are not: the stack's one AdamW updates every parameter."""
    if cfg.train.freeze:
        raise CompError("--freeze is not supported when seeds train together (--seeds); train each seed as its "
                        "own run (comp train ... --seed N --freeze ...)")


def sample_jitter(template: CompTransformer, batches: list[Batch], runs: Sequence[Run]) -> "torch.Tensor | None":
    """Each seed's attention temperature factors ``[seeds, batch]``, drawn from its own data
    stream after its batch and position ids, as :meth:`CompTransformer.sampled_positions`
    draws them in the single-seed loop (``None`` without ``attn_jitter``)."""
    amount = template.model_cfg.attn_jitter
    if not (template.training and amount > 0):
        return None
    return torch.stack([draw_jitter(b.tokens.shape[0], amount, r.gen, b.tokens.device) for b, r in zip(batches, runs)])


def train_seeds(
    cfg: RunConfig,
    seeds: Sequence[int],
    run_dirs: Sequence["str | Path"],
    *,
    resume: bool = False,
    quiet: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[TrainResult]:
    """Train (or resume) one run per seed of ``cfg`` together; results in ``seeds`` order."""
    run_dirs = [Path(d) for d in run_dirs]
    if len(seeds) != len(run_dirs) or len(set(seeds)) != len(seeds):
        raise CompError("give one run directory per seed, and each seed once")
    task = cfg.validate()
    check_packable(cfg)
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    taken = [d for d in run_dirs if run_status(d) in ("interrupted", "finished")]  # stale ones start again
    if taken and not resume:  # check every seed before writing any
        raise CompError(f"run {taken[0]} already exists ({len(taken)} of {len(run_dirs)} seeds); "
                        "resume them with --resume, or pick another --name")
    if resume:
        for d in run_dirs:
            resume_config(d)  # each seed has a resumable state, or a clear error before any is touched
    with locked(run_dirs):  # one process per run; released on every exit path
        try:
            runs = [open_run(with_seed(cfg, s), d, device, resume=resume, concurrent=True)
                    for s, d in zip(seeds, run_dirs)]
            template = runs[0].model
            results: dict[Path, TrainResult] = {}
            for _, group in groupby(sorted(runs, key=lambda r: r.state.step), key=lambda r: r.state.step):
                results.update(_train_group(list(group), task, template, device, quiet, should_stop))
                if any(r.interrupted for r in results.values()):
                    break
        except OSError as e:  # a full disk, a quota: checkpoints are atomic, the last ones are whole
            raise write_failure(Path(e.filename).parent if e.filename else run_dirs[0], e) from None
    return [results.get(d) or TrainResult(d, r.state, [], interrupted=True) for d, r in zip(run_dirs, runs)]


def _train_group(
    runs: list[Run],
    task: Task,
    template: CompTransformer,
    device: torch.device,
    quiet: bool,
    should_stop: Callable[[], bool],
) -> dict[Path, TrainResult]:
    """Train runs that stand at the same step as one stack until each has finished."""
    t = runs[0].cfg.train
    finished = [r.state.done or r.state.step >= t.steps for r in runs]
    results = {r.run_dir: finish_run(r, task) for r, f in zip(runs, finished) if f}  # final evaluation only
    active = [r for r, f in zip(runs, finished) if not f]
    if not active:
        return results
    stack = SeedStack(active, template, t.compile)
    step = active[0].state.step
    bar = ProgressBar(t.steps, step, f"{task.name} x{len(active)} seeds", quiet)
    template.train()
    window = Window(device, len(active))  # per-seed sums on the device: no host sync per step
    try:
        while active:
            # 1. learning rate for this step (one schedule for every seed)
            lr = lr_at(step, t)
            # 2. a fresh batch per seed from its own stream (and its random position ids, if
            #    the encoding has them, and its attention temperature factors [batch] with attn_jitter),
            #    stacked [seeds, batch, pos]
            batches = [next_batch(task, r.gen, r.state, t) for r in active]
            ids = sample_position_ids(template, batches, active)
            factors = sample_jitter(template, batches, active)  # after the ids, as alone
            tokens, mask = stack_batches(batches)
            # 3. forward every seed at once, 4. each seed's loss on its answers [seeds], 5. backward
            stack.zero_grad()
            chunk = None if device.type == "cuda" else CPU_CHUNK
            losses = stack.forward_backward(tokens, mask, t.amp, ids, chunk, factors)
            # 6. clip each seed by its own norm, 7. update
            if t.grad_clip > 0:
                stack.clip_grads_(t.grad_clip)
            stack.step(lr)
            step += 1
            for i, r in enumerate(active):
                r.state.step = step
                if step in r.snapshots:  # --save-every: this seed's weights, straight from the stack
                    r.snapshot({name: p[i] for name, p in stack.params.items()})
            window.add(losses, tokens)

            # 8. log every log_every steps (the only host sync of the hot loop)
            if step % t.log_every == 0 or step == t.steps:
                loss, tokens_seen, dt = window.flush()
                rows = [log_window(r, x, n, dt) for r, x, n in zip(active, loss, tokens_seen)]
                bar.update(step, loss=f"{sum(loss) / len(loss):.4f}", tps=f"{sum(r['tokens_per_s'] for r in rows):,.0f}")

            # 9. evaluate every seed by length: curriculum and early stopping, per seed
            if t.eval_every and step % t.eval_every == 0:
                window.pause()
                if t.curriculum_per_task:  # each member on its own lengths (comp.train.per_task)
                    lows = [record_member_eval(r, a) for r, a in zip(active, stacked_member_eval(stack, task, active))]
                else:
                    lows = [record_eval(r, a) for r, a in zip(active, stacked_quick_eval(stack, task, active))]
                bar.update(step, acc=f"{min(lows):.3f}")
                window.resume()

            # 10. checkpoint every seed; seeds that are done finish and leave the stack
            done = [r.state.done or step >= t.steps for r in active]
            stop_now = should_stop()
            if step % t.ckpt_every == 0 or stop_now or any(done):
                window.pause()
                for i, r in enumerate(active):
                    stack.store(i, r)
                    if step % t.ckpt_every == 0 or stop_now:
                        r.checkpoint()
                window.resume()
            if stop_now:
                for r in active:
                    r.wandb.finish({"interrupted_at": step})
                    results[r.run_dir] = TrainResult(r.run_dir, r.state, [], interrupted=True)
                break
            if any(done):
                window.pause()
                keep = [i for i, d in enumerate(done) if not d]
                for r, d in zip(active, done):
                    if d:
                        results[r.run_dir] = finish_run(r, task)
                active = [active[i] for i in keep]
                if active:
                    stack = SeedStack(active, template, t.compile)
                    window.select(keep)
                    bar.update(step, description=f"{task.name} x{len(active)} seeds")
                window.resume()
    finally:
        bar.close()
    return results
