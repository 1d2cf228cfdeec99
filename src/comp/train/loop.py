"""The training loop: one flat loop, readable top to bottom.

    for each step:  set lr -> sample a fresh batch -> forward -> loss on answers ->
                    backward -> clip -> AdamW step -> log -> evaluate -> checkpoint

The pieces around the loop (:class:`Run` and :func:`open_run`, :func:`log_window`,
:func:`record_eval`, :func:`finish_run`) are shared with multi-seed training
(:mod:`comp.train.multiseed`), so both write the same files with the same logic.
The hot loop never synchronizes with the host: losses and token counts are summed on
the device (:class:`comp.train.reporting.Window`) and read once per ``log_every``.

Runs write into ``runs/<name>/`` the files of :mod:`comp.runs.files`, through
:mod:`comp.runs.state`. ``train(..., resume=True)`` continues exactly where the last
checkpoint stopped: same weights as a run that never stopped.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from comp.config import RunConfig
from comp.evaluation import evaluate, evaluate_length
from comp.model import CompTransformer, build_model, resolve_device
from comp.model.build import check_model_size
from comp.model.fused import fused_training
from comp.runs.files import METRICS_FILE, STATE_FILE, clear_unstarted
from comp.runs.lock import locked
from comp.runs.snapshots import snapshot_schedule
from comp.runs.state import (
    TrainState,
    load_state,
    model_tensors,
    prepare_run_dir,
    save_snapshot,
    save_state,
    save_weights,
    write_eval,
    write_failure,
)
from comp.runs.transfer import freeze, load_parent, parent_record, trainable
from comp.tasks import Task
from comp.tasks.base import check_sample_size
from comp.train.buckets import forward_backward, n_buckets
from comp.train.graphed import CompiledStep
from comp.train.graphed import applies as graph_step_applies
from comp.train.per_task import (
    initial_member_hi,
    initial_member_share,
    member_quick_eval,
    next_batch,
    record_member_eval,
)
from comp.train.reporting import MetricsLog, ProgressBar, WandbLogger, Window
from comp.train.schedule import count_target, lr_at


@dataclass
class TrainResult:
    run_dir: Path
    state: TrainState
    eval_rows: list[dict]
    interrupted: bool = False


def make_optimizer(params: "torch.nn.Module | Iterable[torch.Tensor]", cfg, batch_dims: int = 0) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not biases, norms).

    ``batch_dims`` leading dimensions of each tensor index models, not weights (1 for
    parameters stacked over seeds): they do not count when telling matrices apart.
    """
    params = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
    decay = [p for p in params if p.dim() - batch_dims >= 2]
    rest = [p for p in params if p.dim() - batch_dims < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    fused = cfg.fast_kernels and bool(params) and params[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused or None)


def quick_eval(model, task: Task, lengths: range, n: int, seed: int) -> dict[int, float]:
    """Teacher-forced whole-answer accuracy per length (equal to greedy-decoding accuracy)."""
    out = {}
    for length in lengths:
        accs = [evaluate_length(model, m, length, n, seed, generate=False).acc_cot for m in task.components()]
        out[length] = min(accs)
    return out


@dataclass
class Run:
    """The live objects of one run: what the loop updates and what a checkpoint saves."""

    cfg: RunConfig
    run_dir: Path
    model: CompTransformer
    opt: torch.optim.AdamW
    gen: torch.Generator  # the run's data stream
    state: TrainState
    metrics: MetricsLog
    wandb: WandbLogger
    snapshots: set[int]  # steps whose weights are kept (--save-every; comp.runs.snapshots)

    def checkpoint(self) -> None:
        save_state(self.run_dir, self.model, self.opt, self.gen, self.state)

    def snapshot(self, tensors: "dict[str, torch.Tensor] | None" = None, final: bool = False) -> None:
        """Keep the weights of this step if the schedule (or ``final``, with a schedule) asks for them."""
        if self.state.step in self.snapshots or (final and self.snapshots):
            save_snapshot(self.run_dir, model_tensors(self.model) if tensors is None else tensors, self.state.step)


def open_run(
    cfg: RunConfig,
    run_dir: Path,
    device: torch.device,
    *,
    resume: bool,
    model_hook: Callable[[CompTransformer], None] | None = None,
    concurrent: bool = False,
) -> Run:
    """Build a run's model, optimizer and data stream; restore them on ``resume``,
    otherwise create the run directory. ``concurrent``: other runs share the process."""
    t = cfg.train
    model = build_model(cfg.model, seed=t.seed, device=device)
    if model_hook is not None:
        model_hook(model)
    if t.init_from and not resume:  # transfer: the parent's weights (checked before anything is written)
        t.parent = parent_record(t.init_from)
        load_parent(model, t.parent)
    freeze(model, t.freeze)  # frozen groups: no gradient, no optimizer state
    opt = make_optimizer(trainable(model), t)
    gen = torch.Generator(device=device).manual_seed(t.seed)
    lengths = t.lengths
    state = TrainState(hi=min(t.curriculum_start, lengths.hi) if t.curriculum else lengths.hi)
    if t.curriculum_per_task:  # each member task its own longest length (comp.train.per_task), its share under mix=need
        members = cfg.task.build()
        state.member_hi, state.member_share = initial_member_hi(members, t), initial_member_share(members, t)
    metrics = MetricsLog(run_dir / METRICS_FILE)
    if resume and not (run_dir / STATE_FILE).exists():  # stopped before its first checkpoint
        print(f"run {run_dir} has no checkpoint yet: starting it from scratch", file=sys.stderr)
        clear_unstarted(run_dir)
        resume = False
    if resume:
        state = load_state(run_dir, model, opt, gen)
        metrics.truncate_after(state.step)
        if state.step < t.steps:
            state.done = False  # more steps asked for: continue
    else:
        check_sample_size(t.batch_size, cfg.validate().seq_len(t.lengths.hi), device)  # before writing anything
        prepare_run_dir(run_dir, cfg)
    wandb = WandbLogger(
        t.wandb, t.wandb_project, t.wandb_group, run_dir.name, cfg.to_dict(), run_dir, resume, concurrent
    )
    run = Run(cfg, run_dir, model, opt, gen, state, metrics, wandb, snapshot_schedule(t.save_every, t.steps, t.eval_every))
    if not resume:
        run.snapshot()
    return run


def maybe_compile(fn: Callable, device: torch.device, enabled: bool) -> Callable:
    """``torch.compile(fn)`` on CUDA when enabled; ``fn`` itself otherwise."""
    return torch.compile(fn) if (enabled and device.type == "cuda") else fn


def log_window(run: Run, loss: float, tokens: int, dt: float) -> dict:
    """Account for the logging window that just ended: counters, ``metrics.jsonl``, wandb."""
    state = run.state
    state.tokens += tokens
    state.elapsed += dt
    row = {
        "step": state.step,
        "loss": loss,
        "lr": lr_at(state.step - 1, run.cfg.train),
        "tokens_per_s": tokens / max(dt, 1e-9),
        "max_length": state.hi,
        "elapsed": state.elapsed,
    }
    if state.member_hi:
        row["max_length_by_task"] = dict(state.member_hi)
    run.metrics.write(row)
    run.wandb.log({f"train/{k}": v for k, v in row.items() if k != "step"}, state.step)
    return row


def record_eval(run: Run, accs: dict[int, float]) -> float:
    """Record an evaluation by length, then widen the curriculum or count toward early
    stopping. Returns the lowest accuracy."""
    t, state = run.cfg.train, run.state
    low = min(accs.values())
    state.history.append([state.step, low])
    run.metrics.write({"step": state.step, "eval_acc": {str(k): v for k, v in accs.items()}, "eval_min": low})
    run.wandb.log({"eval/min_acc": low, **{f"eval/acc_L{k}": v for k, v in accs.items()}}, state.step)
    if state.hi < t.lengths.hi and low >= t.curriculum_threshold:
        state.hi = min(t.lengths.hi, state.hi + t.curriculum_step)
    elif state.hi == t.lengths.hi:
        count_target(state, t, low)
    return low


def finish_run(run: Run, task: Task) -> TrainResult:
    """Final state, weights and evaluation by length (``eval.json``) of a run that stopped."""
    state, t = run.state, run.cfg.train
    if not state.done:
        state.done, state.stop_reason = True, "steps"
    run.checkpoint()
    run.snapshot(final=True)
    save_weights(run.run_dir, run.model, run.cfg, state.step)
    rows = evaluate(run.model, task, t.eval_lengths(), n=t.final_eval_n, seed=t.eval_seed)
    write_eval(run.run_dir, state, rows)
    run.wandb.log_table("eval/by_length", rows, state.step)
    run.wandb.finish({"final_min_acc_generate": min(r["acc_generate"] for r in rows), "steps": state.step})
    return TrainResult(run.run_dir, state, rows)


def train(
    cfg: RunConfig,
    run_dir: "str | Path",
    *,
    resume: bool = False,
    quiet: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    model_hook: Callable[[CompTransformer], None] | None = None,
) -> TrainResult:
    """Train (or resume) one run. ``should_stop()`` is polled each step: when it turns
    true the run checkpoints at once and returns with ``interrupted=True``."""
    run_dir = Path(run_dir)
    task = cfg.validate()
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    check_model_size(cfg.model, device)  # before the lock makes the directory
    check_sample_size(t.batch_size, task.seq_len(t.lengths.hi), device)
    with locked(run_dir):  # one process per run; released on every exit path
        try:
            return _train(cfg, run_dir, task, device, resume, quiet, should_stop, model_hook)
        except OSError as e:  # a full disk, a quota: checkpoints are atomic, the last one is whole
            raise write_failure(run_dir, e) from None


def _train(cfg: RunConfig, run_dir: Path, task: Task, device: torch.device, resume: bool, quiet: bool,
           should_stop: Callable[[], bool], model_hook: "Callable[[CompTransformer], None] | None") -> TrainResult:
    """The body of :func:`train`, with the run locked."""
    t = cfg.train
    # ---- model, optimizer, data stream ---------------------------------------------
    run = open_run(cfg, run_dir, device, resume=resume, model_hook=model_hook)
    model, opt, gen, state = run.model, run.opt, run.gen, run.state
    whole = t.compile_step and graph_step_applies(device)  # the whole step compiled (CUDA graphs), else the model
    forward = maybe_compile(model, device, t.compile and not whole)
    bar = ProgressBar(t.steps, state.step, run_dir.name, quiet)

    model.train()
    # length buckets on a CPU, one fixed-shape batch on a GPU; SDPA attention in training forwards
    # (evaluation keeps the hook path). fast_kernels=False: the hook path that --seeds packs run.
    buckets = n_buckets(t.batch_size, device) if t.fast_kernels else 1
    fused = fused_training(model) if t.fast_kernels else contextlib.nullcontext()
    fused.__enter__()
    window = Window(device)  # loss and tokens summed on the device: no host sync per step
    graphed = CompiledStep(model, opt, t.grad_clip, t.amp, device) if whole else None  # steps 3-7 as one (GPU)
    interrupted = False
    try:
        while state.step < t.steps and not state.done:
            # 1. learning rate for this step
            for group in opt.param_groups if graphed is None else ():
                group["lr"] = lr_at(state.step, t)
            # 2. a fresh batch, lengths uniform in lo..hi (hi grows with the curriculum)
            batch = next_batch(task, gen, state, t)
            if graphed is not None:  # compile_step: 3-7 below as one compiled step (comp.train.graphed)
                with model.sampled_positions(batch.tokens, gen):
                    loss = graphed(batch, lr_at(state.step, t))
            # 3. forward (random position ids, if the encoding has them, come from the data stream too),
            # 4. loss on the answer region only, 5. backward: in length buckets on a CPU (no compute on padding)
            else:
                opt.zero_grad(set_to_none=True)
                with model.sampled_positions(batch.tokens, gen):
                    loss = forward_backward(model, forward, batch, buckets, t.amp, t.packing)
                # 6. clip, 7. update
                if t.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                opt.step()
            state.step += 1
            window.add(loss, batch.tokens)
            run.snapshot()  # --save-every: the weights of this step, if the schedule keeps it

            # 8. log every log_every steps (the only host sync of the hot loop)
            if state.step % t.log_every == 0 or state.step == t.steps:
                (loss_mean,), (tokens,), dt = window.flush()
                row = log_window(run, loss_mean, tokens, dt)
                bar.update(state.step, loss=f"{row['loss']:.4f}", tps=f"{row['tokens_per_s']:,.0f}")

            # 9. evaluate by length: curriculum and early stopping (not training time)
            if t.eval_every and state.step % t.eval_every == 0:
                window.pause()
                if state.member_hi:  # per-task curriculum: each member on its own lengths
                    low = record_member_eval(run, member_quick_eval(model, task, state, t))
                else:
                    low = record_eval(run, quick_eval(model, task, range(t.lengths.lo, state.hi + 1), t.eval_n, t.eval_seed))
                bar.update(state.step, acc=f"{low:.3f}")
                window.resume()

            # 10. checkpoint (and stop at once when asked to, e.g. on preemption)
            stop_now = should_stop()
            if state.step % t.ckpt_every == 0 or stop_now:
                window.pause()
                run.checkpoint()
                window.resume()
            if stop_now:
                interrupted = True
                break
    finally:
        fused.__exit__(None, None, None)
        bar.close()

    if interrupted:
        run.wandb.finish({"interrupted_at": state.step})
        return TrainResult(run_dir, state, [], interrupted=True)
    # ---- finish: final state, weights, evaluation ------------------------------------
    return finish_run(run, task)
