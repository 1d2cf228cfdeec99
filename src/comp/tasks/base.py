"""The task interface: sample batches on the fly, mark the answer region, score predictions.

Every task lays a sequence out the same way (positions on the left)::

    0        1 .. L      L+1   L+2 .. L+1+k   L+2+k ..
    <task>   x_1 .. x_L  EoI   _ .. _ (slack) s_1 .. s_L   (CoT)   or   s_L   (no CoT)

with ``k`` slack tokens: a fixed number, or ``"L"``, as many as the row's input length
(:func:`parse_slack`).

and differs only in its input alphabet and its recurrence ``s_t = f(s_{t-1}, x_t)``.
The loss and the scores cover the answer tokens only (``Batch.loss_mask``).

Batching: one batch mixes lengths, right-padded with PAD. Under the causal mask a real
token never attends to a pad that follows it, so padding needs no attention mask and
cannot change any prediction; every row keeps position 0 at its task token; and a
batch has a fixed width (the longest length), which keeps shapes static for
``torch.compile`` and multi-seed ``vmap``. Evaluation uses one length per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch

from comp.errors import CompError
from comp.tasks import vocab
from comp.tasks.lengths import LengthRange


@dataclass
class Batch:
    """A batch of sequences with the bookkeeping analyses need. All tensors share a device."""

    tokens: torch.Tensor  # [batch, pos] long
    loss_mask: torch.Tensor  # [batch, pos] bool: True where the token is an answer target
    lengths: torch.Tensor  # [batch] long: input length L of each row
    eoi_pos: torch.Tensor  # [batch] long: index of EoI (= L + 1)
    answer_start: torch.Tensor  # [batch] long: index of the first answer token (= prompt length)
    answer_pos: torch.Tensor  # [batch] long: index of the final answer token
    task_tokens: torch.Tensor  # [batch] long: the task token of each row

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: "torch.device | str") -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def select(self, rows: torch.Tensor) -> "Batch":
        """The sub-batch of the given row indices (or boolean mask)."""
        return Batch(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def input_positions(self) -> torch.Tensor:
        """[batch, L_max] index of x_t (column t-1); -1 past each row's length."""
        t = torch.arange(int(self.lengths.max()), device=self.tokens.device)[None]  # [1, L_max]
        return torch.where(t < self.lengths[:, None], t + 1, torch.full_like(t, -1))


def cat_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches row-wise, right-padding tokens with PAD to the widest."""
    width = max(b.tokens.shape[1] for b in batches)

    def pad(t: torch.Tensor, value) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    return Batch(
        tokens=torch.cat([pad(b.tokens, vocab.PAD) for b in batches]),
        loss_mask=torch.cat([pad(b.loss_mask, False) for b in batches]),
        **{
            f.name: torch.cat([getattr(b, f.name) for b in batches])
            for f in fields(Batch)
            if f.name not in ("tokens", "loss_mask")
        },
    )


SLACK_L = "L"  # the slack setting "as many filler tokens as the input length"


def parse_slack(value: "int | str") -> "int | Literal['L']":
    """A slack setting as the task takes it: an int >= 0 (``"2"`` -> 2), or ``"L"`` (one token per input)."""
    if value == SLACK_L:
        return SLACK_L
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        raise CompError(f"--slack {value!r} is not a number of filler tokens; give 0 or more, or L (as many as the "
                        "input length)")
    if int(text) < 0:
        raise CompError(f"--slack {text} is negative; give the number of filler tokens, 0 or more, or L")
    return int(text)


class Task:
    """A recurrence task ``s_t = f(s_{t-1}, x_t)`` with CoT, no-CoT and slack variants.

    Subclasses set ``name``, ``alphabet`` (inclusive input value range) and implement
    :meth:`states`. ``cot=False`` keeps only the final state as the answer; ``slack=k``
    puts ``k`` SLACK tokens between EoI and the answer (given, never predicted);
    ``slack="L"`` puts as many as the row's input length.
    """

    name: str = ""
    alphabet: tuple[int, int] = (0, 1)
    cot: bool = True

    def __init__(self, slack: "int | str" = 0):
        self.slack: "int | Literal['L']" = parse_slack(slack)

    def slack_for(self, length: int) -> int:
        """Slack tokens in a sequence of input length ``length``."""
        return length if self.slack == SLACK_L else self.slack

    # ---- the one thing each task defines ------------------------------------------
    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Running states s_1..s_L for inputs x: [batch, L] -> [batch, L]."""
        raise NotImplementedError

    # ---- layout ------------------------------------------------------------------
    @property
    def token(self) -> int:
        return vocab.TASK_TOKENS[self.name]

    @property
    def n_classes(self) -> int:
        """How many distinct answer values there are."""
        return self.alphabet[1] + 1

    def components(self) -> list["Task"]:
        """The single tasks this task is made of (itself; a mixture lists its members)."""
        return [self]

    def seq_len(self, length: int) -> int:
        """Tokens in a sequence of input length ``length``."""
        return length + 2 + self.slack_for(length) + (length if self.cot else 1)

    def position_labels(self, length: int) -> list[str]:
        """Readable labels of each position: ``<task> x1 .. xL EoI _ .. s1 .. sL``."""
        answers = [f"s{t}" for t in range(1, length + 1)] if self.cot else [f"s{length}"]
        return ["<task>"] + [f"x{t}" for t in range(1, length + 1)] + ["EoI"] + ["_"] * self.slack_for(length) + answers

    # ---- sampling ----------------------------------------------------------------
    def sample(self, gen: torch.Generator, lengths: "LengthRange | int | str", batch_size: int) -> Batch:
        """Draw ``batch_size`` fresh sequences with lengths uniform in ``lengths``.

        Everything is drawn from ``gen`` on ``gen.device``: the same generator state
        gives the same batch.
        """
        rng = LengthRange.parse(lengths)
        device = gen.device
        check_sample_size(batch_size, self.seq_len(rng.hi), device)
        lens = torch.randint(rng.lo, rng.hi + 1, (batch_size,), generator=gen, device=device)
        lo, hi = self.alphabet
        x = torch.randint(lo, hi + 1, (batch_size, rng.hi), generator=gen, device=device)
        return self.make_batch(x, lens)

    def make_batch(self, x: torch.Tensor, lengths: torch.Tensor) -> Batch:
        """Lay out inputs ``x`` [batch, L_max] (row b uses its first ``lengths[b]``) as a Batch.

        The width is ``seq_len(L_max)``, fixed by the shape of ``x`` rather than by the
        lengths drawn: no host synchronization, and static shapes for compiled models.
        """
        device = x.device
        s = self.states(x)  # [batch, L_max]
        L = lengths[:, None]  # [batch, 1]
        n_ans = L if self.cot else torch.ones_like(L)
        a0 = L + 2 + (L if self.slack == SLACK_L else self.slack)  # [batch, 1] first answer index
        width = self.seq_len(x.shape[1])
        idx = torch.arange(width, device=device)[None]  # [1, pos]
        lmax = x.shape[1]
        tokens = torch.full((x.shape[0], width), vocab.PAD, dtype=torch.long, device=device)
        tokens[:, 0] = self.token
        in_x = (idx >= 1) & (idx <= L)
        tokens = torch.where(in_x, x.gather(1, (idx - 1).clamp(0, lmax - 1).expand(x.shape[0], -1)), tokens)
        tokens = torch.where(idx == L + 1, vocab.EOI, tokens)
        tokens = torch.where((idx >= L + 2) & (idx < a0), vocab.SLACK, tokens)
        in_ans = (idx >= a0) & (idx < a0 + n_ans)
        if self.cot:
            ans = s.gather(1, (idx - a0).clamp(0, lmax - 1))
        else:
            ans = s.gather(1, L - 1).expand(-1, width)
        tokens = torch.where(in_ans, ans, tokens)
        return Batch(
            tokens=tokens,
            loss_mask=in_ans,
            lengths=lengths.clone(),
            eoi_pos=lengths + 1,
            answer_start=a0[:, 0],
            answer_pos=(a0 + n_ans - 1)[:, 0],
            task_tokens=torch.full_like(lengths, self.token),
        )


def score(batch: Batch, preds: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-row exact match of the whole answer region and of the final answer.

    ``preds[:, i]`` is the model's prediction for token ``i`` (argmax of logits at
    ``i - 1``); column 0 is ignored. Returns ``{"cot": [batch] bool, "answer": [batch] bool}``.
    """
    hit = preds == batch.tokens  # [batch, pos]
    cot = (hit | ~batch.loss_mask).all(dim=1)
    answer = hit.gather(1, batch.answer_pos[:, None])[:, 0]
    return {"cot": cot, "answer": answer}


CHECK_ABOVE = 1 << 24  # tokens per batch below which sampling never asks how much memory there is (the hot loop)


def check_sample_size(rows: int, width: int, device) -> None:
    """Refuse (a :class:`comp.errors.CompError`) to draw ``rows`` sequences of ``width`` tokens
    that cannot fit in memory, before allocating them; small batches are not checked."""
    if rows * width > CHECK_ABOVE:
        from comp.resources import check_rows

        check_rows(rows, width, device, "the sequences asked for", "lower --n (or --batch-size when training)")
