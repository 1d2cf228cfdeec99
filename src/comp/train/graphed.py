"""A whole training step compiled as one: the GPU path (``train.compile_step``, CUDA only).

On a GPU a 400k-weight model is launch-bound: a step of ~200 small kernels costs what
their launches cost (about 22 ms on an H200), not what they compute. :class:`CompiledStep`
hands the whole step to ``torch.compile`` (forward, loss on the answer tokens, backward,
gradient clipping, AdamW); on CUDA with ``mode="reduce-overhead"``, which replays the
compiled graphs as CUDA graphs: one launch per graph instead of one per kernel.

What keeps the step capturable and free of host synchronizations:

- static shapes: a batch is always ``seq_len(hi)`` wide (:meth:`comp.tasks.base.Task.make_batch`
  fixes the width by the longest length that can be drawn) and the whole padded batch is
  one forward (no length buckets: those need widths on the host);
- the learning rate is a device tensor updated in place each step (a Python float would
  be a constant of the graph: a recompile per value); AdamW reads it as a tensor
  (comp's AdamW is ``fused``, whose step counters live on the device; otherwise
  ``capturable`` on CUDA);
- the loss comes back as a device tensor; the loop sums it on the device
  (:class:`comp.train.reporting.Window`) and reads it once per ``log_every`` steps;
- sampling stays outside (eager, on the device, from the run's generator), so the data
  stream, resume and seeds are those of the eager loop.

The result equals the eager padded step (``forward_backward`` with one bucket, then
clip and AdamW) to float rounding: ``tests/test_graphed.py`` runs it on a CPU with a
compile backend that needs no compiler (``aot_eager``) and compares losses and weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from comp.evaluation import answer_loss, autocast
from comp.tasks import Batch

DEVICES = ("cuda",)  # where train.compile_step applies (inductor on a CPU needs a working C++ toolchain)
MODES = {"cuda": "reduce-overhead"}  # torch.compile mode per device type (reduce-overhead: CUDA graphs)
BACKEND: "str | None" = None  # torch.compile backend (None: inductor; tests on a CPU use dynamo's eager)


def applies(device: torch.device) -> bool:
    """Whether ``train.compile_step`` compiles the step on ``device`` (elsewhere it is ignored, like ``compile``)."""
    return device.type in DEVICES


def tensor_lr(opt: torch.optim.Optimizer, device: torch.device) -> torch.Tensor:
    """Make every group's learning rate one shared device tensor (updated in place); returns it."""
    lr = torch.tensor(float(opt.param_groups[0]["lr"]), device=device)
    for group in opt.param_groups:
        group["lr"] = lr  # a tensor lr needs fused=True (comp's AdamW, fast_kernels) or capturable=True
        if device.type == "cuda" and not group.get("fused"):
            group["capturable"] = True  # step counters on the device: no sync, graph-capturable
    for state in opt.state.values():  # a resumed optimizer: its step counters move to the device too
        if device.type == "cuda" and torch.is_tensor(state.get("step")):
            state["step"] = state["step"].to(device)
    return lr


class CompiledStep:
    """``step(batch) -> loss`` [] on the device: one compiled training step of ``model``
    with ``opt`` (its learning rates turned into one device tensor, see :func:`tensor_lr`)."""

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, grad_clip: float, amp: bool,
                 device: torch.device, backend: "str | None" = None):
        self.model, self.opt, self.grad_clip, self.amp, self.device = model, opt, grad_clip, amp, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.lr = tensor_lr(opt, device)
        backend = backend or BACKEND
        kwargs: dict = {"backend": backend} if backend else {"mode": MODES.get(device.type)}
        self._step: Callable = torch.compile(self._eager_step, **kwargs)

    def _eager_step(self, tokens: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp):
            logits = self.model(tokens)  # [batch, pos, d_vocab]
        loss = answer_loss(logits, tokens, loss_mask)  # mean over answer tokens
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    def __call__(self, batch: Batch, lr: float) -> torch.Tensor:
        """One step on ``batch`` at learning rate ``lr``; the loss (a device tensor, no sync)."""
        self.lr.fill_(lr)
        return self._step(batch.tokens, batch.loss_mask)
