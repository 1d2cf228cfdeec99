"""Reproducible training at any thread count: table lookups through ``F.embedding``.

Reading rows of a learned table by advanced indexing (``W_E[tokens]``) has, as its
backward, ``index_put_(..., accumulate=True)``. On a CPU with more than one thread and
a large enough gradient (at least 32768 elements), PyTorch runs that kernel in parallel
with atomic float adds, so the order in which the rows of repeated tokens are summed
changes from run to run: two identical runs at the default two threads drifted apart
(about 3e-6 after 150 steps), while one thread was exact.

``F.embedding`` reads the same rows, and its CPU backward
(``embedding_dense_backward_cpu``) gives each thread whole rows of the table and sums
every row in token order: bit-identical at any thread count, and as fast. Every
lookup into a trainable table goes through :func:`lookup`; TransformerLens's token
embedding is switched to it by :func:`install_lookup_embed` (same module, parameter
and hooks, only the indexing changes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformer_lens.components import Embed


def lookup(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``table[ids]`` ([rows, d] table, ids of any shape -> [*ids.shape, d]) with a
    backward that is deterministic at any thread count."""
    return F.embedding(ids, table)


class LookupEmbed(Embed):
    """TransformerLens's ``Embed`` reading ``W_E`` through :func:`lookup`."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        embed = lookup(self.W_E, tokens)  # [batch, pos, d_model]
        return self.ln(embed) if self.cfg.post_embedding_ln else embed


def install_lookup_embed(embed: Embed) -> None:
    """Make a built ``Embed`` a :class:`LookupEmbed` in place (its weights are kept)."""
    if type(embed) is not Embed:
        raise TypeError(f"expected a TransformerLens Embed, got {type(embed).__name__}")
    embed.__class__ = LookupEmbed
