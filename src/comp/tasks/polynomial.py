"""Polynomial iteration modulo 11: ``s_1 = x_1``, ``s_t = s_{t-1} * x_t + 1 (mod 11)``.

Inputs are drawn from 1..10. Worked example, ``x = 3 2 5``::

    s_1 = 3,  s_2 = 3*2+1 = 7,  s_3 = 7*5+1 = 36 = 3 (mod 11)
    <polynomial> 3 2 5 EoI 3 7 3        loss on s_1..s_3
"""

from __future__ import annotations

import torch

from comp.tasks.base import Task

MODULUS = 11


class Polynomial(Task):
    """Iterate ``s -> s * x + 1 (mod 11)`` along the input."""

    name = "polynomial"
    alphabet = (1, 10)
    cot = True

    def states(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)  # [batch, L]
        s = x[:, 0]
        out[:, 0] = s
        for t in range(1, x.shape[1]):
            s = (s * x[:, t] + 1) % MODULUS
            out[:, t] = s
        return out
