"""Parity, with a chain of thought (the running parity) or with the final answer only.

Worked example, ``x = 1 0 1 1`` (L = 4), running parity ``s = 1 1 0 1``::

    parity (CoT):            <parity> 1 0 1 1 EoI 1 1 0 1        loss on s_1..s_4
    parity_nocot:            <parity_nocot> 1 0 1 1 EoI 1        loss on s_4 only
    parity_nocot, slack 2:   <parity_nocot> 1 0 1 1 EoI _ _ 1    loss on s_4 only

``s_t = x_1 xor ... xor x_t``; EoI plays the initial state s_0 = 0.
"""

from __future__ import annotations

import torch

from comp.tasks.base import Task


class Parity(Task):
    """Running parity as the chain of thought: ``s_t = s_{t-1} xor x_t``."""

    name = "parity"
    alphabet = (0, 1)
    cot = True

    def states(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(dim=1) % 2  # [batch, L]


class ParityNoCoT(Parity):
    """Parity without chain of thought: only the final parity follows EoI (and any slack)."""

    name = "parity_nocot"
    cot = False
