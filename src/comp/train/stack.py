"""Many models of one architecture as one: parameters stacked on a leading seed axis.

:class:`SeedStack` holds the parameters of S runs as tensors ``[S, ...]`` (the layout of
``torch.func.stack_module_state``), runs all S models at once with ``vmap`` over
``functional_call`` of one template :class:`~comp.model.CompTransformer` (so the
TransformerLens forward, its hook points and any hooks on the template are the ones a
single run uses), and updates them with one ``torch.optim.AdamW`` over the stacked
tensors.

Why one AdamW over stacked tensors is S AdamWs: AdamW is elementwise given its
hyper-parameters and step count, and the seeds of a stack share both (they start
together and follow one schedule). The parameter groups are the single run's
(:func:`comp.train.loop.make_optimizer`, matrices decayed), in the same order, so
optimizer state ``i`` of the stack is optimizer state ``i`` of every seed. Gradient
clipping is not elementwise (each model is scaled by its own global norm): it is done per
seed here, as ``torch.nn.utils.clip_grad_norm_`` computes it.

The stack is a working copy of its runs: :meth:`SeedStack.store` copies seed ``i``'s
weights and optimizer state back into its :class:`~comp.train.loop.Run`, whose
single-run objects then checkpoint, evaluate and finish with the single-run code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.func import functional_call, vmap

from comp.evaluation import answer_loss, autocast
from comp.model import CompTransformer, pinned_positions
from comp.model.build import jittered
from comp.train.loop import Run, make_optimizer, maybe_compile


def stacked_logits(
    template: CompTransformer,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    tokens: torch.Tensor,
    position_ids: "torch.Tensor | None" = None,
    jitter: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Logits ``[seeds, batch, pos, d_vocab]`` of every stacked model.

    ``params`` are ``[seeds, ...]``; ``tokens`` is ``[seeds, batch, pos]`` (each seed its
    own batch) or ``[batch, pos]`` (one batch for all); ``position_ids`` ``[seeds, batch,
    pos]``, if given, are each seed's own ids (random ids drawn from its data stream),
    pinned on the template for that seed's slice of the forward; ``jitter`` ``[seeds, batch]``,
    if given, each seed's attention temperature factors (``attn_jitter``, drawn from its stream).
    """

    def one(p, tok, ids, factor):
        with pinned_positions(template, ids), jittered(template, factor):
            return functional_call(template, (p, buffers), (tok,))  # [batch, pos, d_vocab]

    shared = tokens.dim() == 2  # one batch for all: ids the model draws itself (evaluation) are the same for all
    in_dims = (0, None if shared else 0, None if position_ids is None else 0, None if jitter is None else 0)
    return vmap(one, in_dims=in_dims, randomness="same" if shared else "error")(params, tokens, position_ids, jitter)


def stacked_losses(
    template: CompTransformer,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    tokens: torch.Tensor,
    loss_mask: torch.Tensor,
    position_ids: "torch.Tensor | None" = None,
    jitter: "torch.Tensor | None" = None,
) -> torch.Tensor:
    """Answer-region loss of each seed on its own batch: ``[seeds]``."""
    logits = stacked_logits(template, params, buffers, tokens, position_ids, jitter)  # [seeds, batch, pos, d_vocab]
    return vmap(answer_loss)(logits, tokens, loss_mask)


class SeedStack:
    """The parameters and optimizer state of ``runs`` (one config, one step), stacked."""

    def __init__(self, runs: Sequence[Run], template: CompTransformer, compile_fn: bool = False):
        device = next(template.parameters()).device
        self.template = template  # kept across stacks: a compiled function keeps its guards
        self.buffers = dict(template.named_buffers())
        named = [dict(r.model.named_parameters()) for r in runs]
        self.params = {  # [seeds, ...] leaves
            name: torch.stack([n[name].detach() for n in named]).requires_grad_(True) for name in named[0]
        }
        self.opt = make_optimizer(self.params.values(), runs[0].cfg.train, batch_dims=1)
        self._load_optimizers([r.opt for r in runs])
        self._losses = maybe_compile(stacked_losses, device, compile_fn)

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def _load_optimizers(self, opts: Sequence[torch.optim.Optimizer]) -> None:
        """Stack the per-seed AdamW states (empty for fresh runs) into the stack's AdamW."""
        dicts = [o.state_dict() for o in opts]
        if not dicts[0]["state"]:
            return
        state = {
            idx: {
                key: (value if key == "step" else torch.stack([d["state"][idx][key] for d in dicts]))
                for key, value in slots.items()
            }
            for idx, slots in dicts[0]["state"].items()
        }
        self.opt.load_state_dict({"state": state, "param_groups": dicts[0]["param_groups"]})

    def losses(
        self,
        tokens: torch.Tensor,
        loss_mask: torch.Tensor,
        position_ids: "torch.Tensor | None" = None,
        seeds: slice = slice(None),
        jitter: "torch.Tensor | None" = None,
    ) -> torch.Tensor:
        """Loss of each seed on its own batch (``tokens``, ``loss_mask``, ``position_ids``:
        ``[seeds, batch, pos]``): ``[seeds]``. ``seeds`` picks a slice of the stack (the
        tensors then cover that slice only); ``jitter`` ``[seeds, batch]``: attention temperature factors."""
        params = {name: p[seeds] for name, p in self.params.items()}
        return self._losses(self.template, params, self.buffers, tokens, loss_mask, position_ids, jitter)

    def forward_backward(
        self,
        tokens: torch.Tensor,
        loss_mask: torch.Tensor,
        amp: bool,
        position_ids: "torch.Tensor | None" = None,
        chunk: "int | None" = None,
        jitter: "torch.Tensor | None" = None,
    ) -> torch.Tensor:
        """Gradients of every seed's loss (seeds are independent: the sum's gradient is each
        seed's own), ``chunk`` seeds at a time; returns the detached losses ``[seeds]``."""
        chunk = chunk or self.size
        out = []
        for lo in range(0, self.size, chunk):
            part = slice(lo, lo + chunk)
            ids = None if position_ids is None else position_ids[part]
            factors = None if jitter is None else jitter[part]
            with autocast(tokens.device, amp):
                losses = self.losses(tokens[part], loss_mask[part], ids, seeds=part, jitter=factors)  # [chunk]
            losses.sum().backward()
            out.append(losses.detach())
        return torch.cat(out)

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every seed's logits on one batch ``[batch, pos]``: ``[seeds, batch, pos, d_vocab]``."""
        return stacked_logits(self.template, self.params, self.buffers, tokens)

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def clip_grads_(self, max_norm: float) -> None:
        """Scale each seed's gradients to global norm <= ``max_norm`` (per seed, like clip_grad_norm_)."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)  # [seeds, tensors]
        total = torch.linalg.vector_norm(norms, dim=1)  # [seeds]
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)  # [seeds]
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))

    def step(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()

    @torch.no_grad()
    def store(self, i: int, run: Run) -> None:
        """Copy seed ``i``'s weights and optimizer state into ``run``'s own model and AdamW."""
        for name, p in run.model.named_parameters():
            p.copy_(self.params[name][i])
        sd = self.opt.state_dict()
        state = {
            idx: {key: (value.clone() if key == "step" else value[i].clone()) for key, value in slots.items()}
            for idx, slots in sd["state"].items()
        }
        run.opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
