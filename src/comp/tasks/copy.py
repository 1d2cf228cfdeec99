"""Binary copy: the answer repeats the input, ``s_t = x_t``.

Worked example, ``x = 1 0 1 1``::

    <copy> 1 0 1 1 EoI 1 0 1 1        loss on s_1..s_4
"""

from __future__ import annotations

import torch

from comp.tasks.base import Task


class Copy(Task):
    """Copy the binary input after EoI."""

    name = "copy"
    alphabet = (0, 1)
    cot = True

    def states(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # [batch, L]
