"""Probe sites: which residual-stream positions a probe reads, and what it should find there.

Every site is one position of one sequence. Sites fall into three position classes,
and every site has a *step* ``t``, the step of the recurrence ``s_t = f(s_{t-1}, x_t)``
it belongs to. For ``<parity> 1 0 1 1 EoI 1 1 0 1`` (positions 0..9, L = 4)::

    class    positions                     step t                   example
    input    1..L, holding x_t             t                        pos 3 holds x_3: t = 3
    eoi      L+1, holding EoI              1 (the chain starts)     pos 5: t = 1
    answer   positions whose next token    t of the predicted s_t   pos 6 holds s_1, predicts s_2: t = 2
             is an answer token, EoI
             excepted
    slack    the SLACK tokens between      j for the j-th slack token,  <parity_nocot> 1 0 1 1 EoI _ _ 1:
             EoI and the answer            at most L                    pos 6: t = 1, pos 7: t = 2

So at an answer site the model is about to write ``s_t``: the token it holds is
``s_{t-1}`` (CoT), the input it must read is ``x_t``. Without CoT the only answer is
``s_L``, predicted by the last token before it (EoI, or the last slack token), step L;
with ``slack = 0`` that position is EoI, so the answer class is empty. The j-th slack token
stands where ``s_j`` would be written with a chain of thought, so its ``s_t`` asks whether the
slack positions carry the running parity (with ``slack = L`` they could hold all of it).

Targets (``TARGETS``) are columns of :class:`Sites`, one label per site:

- ``s_prev``: ``s_{t-1}``, the state before step t (undefined at t = 1: no site);
- ``x_t``: the input of step t (at an input site, the token there; at an answer
  site, the input the model must fetch to write ``s_t``);
- ``s_t``: the state after step t (at an answer site, the token about to be written);
- ``position``: the position index of the site;
- ``length``: the input length L of the sequence;
- ``task``: the task token of the sequence (a mixture's member).

Each target's label is a function of a few variables (``CONDITIONS``): ``s_t`` of the
task, the step and the inputs ``x_1..x_t``; ``s_prev`` of the task, the step and
``x_1..x_{t-1}``; ``x_t`` of the task, the step and ``x_t``; the others of themselves.
The control task (:mod:`comp.probes.linear`) is a random function of the same variables
and of the site's token (so that it is never a mere renaming of position, length or task).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from comp.catalog import PROBE_TARGETS as TARGETS  # noqa: F401  (what a probe can read; in comp.catalog for --help)
from comp.tasks import Batch, Task

POSITION_CLASSES = ("input", "eoi", "answer", "slack")  # "slack" only for tasks with slack (task_classes)
UNDEFINED = -1  # label of a site where a target has no value (s_prev at step 1)

# The variables a target's label is a function of, plus the site's own token (what the
# embeddings show): the control task is a random function of the same variables.
CONDITIONS: dict[str, str] = {
    "s_prev": "task, token, step t, inputs x_1..x_{t-1}",
    "x_t": "task, token, step t, input x_t",
    "s_t": "task, token, step t, inputs x_1..x_t",
    "position": "task, token, position",
    "length": "task, token, length",
    "task": "task, token",
}

@dataclass
class Sites:
    """One row per site; all tensors are [n_sites] long."""

    row: torch.Tensor  # sequence index in the batch
    pos: torch.Tensor  # position index in the sequence
    token: torch.Tensor  # token id at the site
    step: torch.Tensor  # step t of the recurrence
    s_prev: torch.Tensor
    x_t: torch.Tensor
    s_t: torch.Tensor
    position: torch.Tensor
    length: torch.Tensor
    task: torch.Tensor
    inputs: torch.Tensor  # [n_sites, L_max]: the row's inputs x_1..x_{L_max} (padding past its length)

    def __len__(self) -> int:
        return self.row.shape[0]

    def select(self, keep: torch.Tensor) -> "Sites":
        return Sites(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def labels(self, target: str) -> torch.Tensor:
        """[n_sites] labels of one target (``UNDEFINED`` where it has none)."""
        return getattr(self, target)

    def condition(self, target: str) -> torch.Tensor:
        """[n_sites, k] the variables of ``CONDITIONS[target]``, one row per site; the
        control task maps each distinct row to a random label."""
        t = self.step[:, None]  # [n_sites, 1]
        col = torch.arange(self.inputs.shape[1], device=t.device)[None]  # column j holds x_{j+1}
        if target in ("s_prev", "s_t"):
            seen = col < (t - 1 if target == "s_prev" else t)
            body = [t, torch.where(seen, self.inputs, UNDEFINED)]
        elif target == "x_t":
            body = [t, self.x_t[:, None]]
        elif target == "task":
            body = []
        else:
            body = [self.labels(target)[:, None]]
        return torch.cat([self.task[:, None], self.token[:, None], *body], dim=1)


def task_classes(task: Task) -> tuple[str, ...]:
    """The position classes a task's sequences have: every class, less ``slack`` where there is none."""
    has_slack = any(m.slack for m in task.components())
    return tuple(c for c in POSITION_CLASSES if c != "slack" or has_slack)


def batch_states(task: Task, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and running states of every row: x [batch, L_max], s [batch, L_max].

    Entries past a row's length are meaningless (read from padding). A mixture's rows
    are computed by the member task named by their task token.
    """
    lmax = int(batch.lengths.max())
    x = batch.tokens[:, 1 : lmax + 1]  # [batch, L_max]
    s = torch.zeros_like(x)
    for member in task.components():
        rows = batch.task_tokens == member.token
        if rows.any():
            s[rows] = member.states(x[rows])
    return x, s


def _site_positions(batch: Batch, position_class: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, pos, step) of every site of one class, as [n_sites] tensors."""
    width = batch.tokens.shape[1]
    p = torch.arange(width, device=batch.tokens.device)[None]  # [1, pos]
    L = batch.lengths[:, None]  # [batch, 1]
    if position_class == "input":
        keep = (p >= 1) & (p <= L)
        step = p
    elif position_class == "eoi":
        keep = p == batch.eoi_pos[:, None]
        step = torch.ones_like(keep, dtype=torch.long)
    elif position_class == "answer":
        a0, a1 = batch.answer_start[:, None], batch.answer_pos[:, None]
        keep = (p >= a0 - 1) & (p < a1) & (p != batch.eoi_pos[:, None])
        cot = (a1 - a0 + 1) == L  # one answer per input: step = index of the predicted answer
        step = torch.where(cot, p - a0 + 2, L.expand_as(keep))
    elif position_class == "slack":
        keep = (p > batch.eoi_pos[:, None]) & (p < batch.answer_start[:, None])
        step = torch.minimum(p - batch.eoi_pos[:, None], L)
    else:
        raise ValueError(f"unknown position class {position_class!r}")
    row, pos = keep.nonzero(as_tuple=True)
    return row, pos, step.expand_as(keep)[row, pos]


def find_sites(task: Task, batch: Batch, position_class: str) -> Sites:
    """Every site of one position class in ``batch``, with the labels of every target."""
    row, pos, step = _site_positions(batch, position_class)
    x, s = batch_states(task, batch)
    t0 = step - 1  # column of step t in x and s
    s_prev = torch.where(step >= 2, s[row, (t0 - 1).clamp_min(0)], torch.full_like(step, UNDEFINED))
    return Sites(
        row=row,
        pos=pos,
        token=batch.tokens[row, pos],
        step=step,
        s_prev=s_prev,
        x_t=x[row, t0],
        s_t=s[row, t0],
        position=pos,
        length=batch.lengths[row],
        task=batch.task_tokens[row],
        inputs=x[row],
    )
