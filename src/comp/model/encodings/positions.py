"""Position ids: which position each token has, before an encoding turns ids into vectors.

Every encoding reads positions as a ``[batch, pos]`` tensor of integer ids. Plain
encodings use the token index (``natural_ids``). Three id modifiers change that:

- ``coupling`` (:func:`coupled_ids`): read from the token layout
  ``<task> x_1 .. x_L EoI [slack] s_1 .. s_L``: ``x_t`` keeps id ``t``, the answer
  token ``s_t`` shares the id ``t`` of ``x_t``, and EoI (with any slack) plays ``s_0``
  and shares id 0 with the task token. A no-CoT task's single answer ``s_L`` gets id L.
  Pads get id 0. Example, ``<parity> 1 0 1 1 EoI 1 1 0 1``::

      index  0 1 2 3 4 5 6 7 8 9
      id     0 1 2 3 4 0 1 2 3 4

- ``randomized`` (:func:`randomize`): the ``K`` distinct ids of a row (``K`` = its
  largest id + 1) are replaced, in order, by a sorted uniform random subset of
  ``0 .. max_position-1`` (Ruoss et al. 2023). Equal ids stay equal (so it composes
  with coupling) and order is kept. Training draws a fresh subset per row from the
  data generator. Evaluation, like Ruoss et al.'s, also uses random ids, but fixed
  ones (:func:`fixed_randomize`): every row spanning ``K`` ids gets the same subset,
  drawn from a generator seeded by ``K`` alone, so an evaluation is reproducible and
  does not depend on how rows are batched.
- ``abacus`` (:func:`shift`, training only): one random offset per row, uniform in
  ``0 .. max_position-K``, added to every id (McLeish et al. 2024). Evaluation uses
  offset 0.

An evaluation sequence must need no more than ``max_position`` ids (checked by
:func:`comp.model.max_length`).

The layout functions are causal: the id of token ``i`` depends on tokens ``0..i``
only. Random ids depend on the whole row (its ``K``), so decoding pins the ids of the
full-length sequence (see :func:`comp.evaluation.greedy_decode`).
"""

from __future__ import annotations

import torch

from comp.errors import CompError
from comp.tasks import TASKS
from comp.tasks import vocab as V


def _no_cot_table() -> torch.Tensor:
    """[d_vocab] bool: True at the task tokens whose answer is the final state only."""
    table = torch.zeros(V.D_VOCAB, dtype=torch.bool)
    for name, cls in TASKS.items():
        if not cls.cot:
            table[V.TASK_TOKENS[name]] = True
    return table


NO_COT = _no_cot_table()


def natural_ids(tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos] token index ``0 .. pos-1`` of every token."""
    return torch.arange(tokens.shape[1], device=tokens.device).expand(tokens.shape[0], -1)


def coupled_ids(tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos] position-coupled ids (see the module docstring); natural before EoI."""
    b, p = tokens.shape
    i = torch.arange(p, device=tokens.device)[None]  # [1, pos]
    is_eoi = tokens == V.EOI
    eoi = torch.where(is_eoi.any(1), is_eoi.int().argmax(1), p)[:, None]  # [batch, 1]; p when no EoI yet
    L = eoi - 1
    answer = (i > eoi) & (tokens != V.SLACK) & (tokens != V.PAD)  # [batch, pos]
    rank = answer.long().cumsum(1)  # s_t has rank t
    no_cot = NO_COT.to(tokens.device)[tokens[:, :1].clamp(0, V.D_VOCAB - 1)]  # [batch, 1]
    ids = torch.where(i <= L, i, torch.zeros_like(i))  # task token and inputs keep their index
    return torch.where(answer, torch.where(no_cot, L, rank), ids)


def distinct_ids(ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """[batch] how many ids the real (non-pad) tokens of each row span: largest id + 1."""
    return ids.masked_fill(~real, -1).max(1).values + 1


def randomize(ids: torch.Tensor, real: torch.Tensor, max_position: int, gen: "torch.Generator | None") -> torch.Tensor:
    """Map each row's ids ``0..K-1`` in order onto a sorted uniform random ``K``-subset of
    ``0..max_position-1``; pads get id 0."""
    k = distinct_ids(ids, real)  # [batch]
    kmax = min(ids.shape[1], max_position)  # >= every k (layout ids are below the width): no host sync
    scores = torch.rand(ids.shape[0], max_position, generator=gen, device=ids.device)
    perm = scores.argsort(1)[:, :kmax]  # [batch, kmax]: the first K of a random permutation
    keep = torch.arange(kmax, device=ids.device)[None] < k[:, None]
    subset = torch.where(keep, perm, max_position).sort(1).values  # [batch, kmax]: sorted, then fillers
    out = subset.gather(1, ids.clamp(0, kmax - 1))
    return torch.where(real, out, torch.zeros_like(out))


EVAL_POSITION_SEED = 20230526  # seeds the fixed evaluation subsets of ``randomized``


def fixed_randomize(ids: torch.Tensor, real: torch.Tensor, max_position: int) -> torch.Tensor:
    """Evaluation ids of ``randomized``: rows spanning ``K`` ids all get the one sorted random
    ``K``-subset of ``0..max_position-1`` drawn from a generator seeded by ``K``; pads get 0."""
    k = distinct_ids(ids, real)  # [batch]
    out = torch.zeros_like(ids)
    for kk in k.unique().tolist():  # evaluation only: a few distinct K per batch
        gen = torch.Generator().manual_seed(EVAL_POSITION_SEED + kk)
        subset = torch.randperm(max_position, generator=gen)[:kk].sort().values.to(ids.device)  # [K]
        rows = k == kk
        out[rows] = subset[ids[rows].clamp(0, kk - 1)]
    return torch.where(real, out, torch.zeros_like(out))


def shift(ids: torch.Tensor, real: torch.Tensor, max_position: int, gen: "torch.Generator | None") -> torch.Tensor:
    """Add one random offset per row, uniform in ``0..max_position-K``; pads get id 0."""
    k = distinct_ids(ids, real)  # [batch]
    u = torch.rand(ids.shape[0], generator=gen, device=ids.device)
    offset = (u * (max_position - k + 1)).floor().long().clamp(min=0)  # [batch]
    return torch.where(real, ids + offset[:, None], torch.zeros_like(ids))


class PositionState:
    """The ids of the tokens a forward pass is running on, shared by the modules that read them.

    ``ids`` covers every token the attention sees (cached ones first); a module that
    handles ``n`` new tokens after ``offset`` cached ones reads ``window(offset, n)``.
    """

    def __init__(self, natural_fallback: bool):
        self.ids: torch.Tensor | None = None  # [batch, all_pos]
        self.natural_fallback = natural_fallback  # ids of a run started mid-model (no tokens) are natural

    def window(self, offset: int, n: int, batch: int, device: torch.device) -> torch.Tensor:
        """[batch, n] ids of ``n`` tokens after ``offset`` earlier ones."""
        if self.ids is not None:
            return self.ids[:, offset : offset + n]
        if self.natural_fallback:
            return torch.arange(offset, offset + n, device=device).expand(batch, -1)
        raise CompError(
            "this encoding reads position ids from the tokens, and this forward pass has none; "
            "run the model on tokens (with start_at_layer, also pass tokens=...)"
        )
